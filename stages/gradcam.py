"""Stage `gradcam`: heatmaps of the target class, measured against the ground-truth masks.

Writes the raw maps, the article's side-by-side figures, one gallery per kind
(correct / inverted / near miss / no response) and the localization scores. The synthetic
training anomalies are mapped too (their masks are known): does the network point at what
it was taught, and, without anomalous train images, they choose the IoU threshold.
A network with a segmentation head (model.segmentation) or a patch memory
(model.patch_memory) has its own maps: each is measured the same way (metrics/gradcam.json
`segmentation`, `patch`) and drawn in plots/gradcam/<map>/.
The headline of each map (metrics/maps/) is what `dvc metrics show` prints.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np
import pandas as pd
import torch

from metricad.analysis.gradcam import heatmaps_for_images, maps_per_target
from metricad.analysis.kinds import KINDS
from metricad.analysis.localization import rows_to_map, score_maps
from metricad.data.batches import load_image_tensor, load_mask_array
from metricad.data.framing import recorded_framing
from metricad.data.manifest import read_manifest, synthetic_rows
from metricad.errors import run_stage
from metricad.files import fresh_folder, read_json, write_csv, write_json, write_npy
from metricad.model.checkpoint import load_checkpoint
from metricad.model.inference import network_maps
from metricad.model.torch_model import arch_from_params
from metricad.params import load_params
from metricad.paths import (
    HEATMAP_INDEX,
    HEATMAPS,
    HEATMAPS_DIR,
    INFERENCE_SETTINGS,
    MAP_HEADLINES,
    METRICS_DIR,
    MODEL,
    PLOTS_DIR,
    RESIZED_MANIFEST,
    SYNTHETIC_IMAGES,
    SYNTHETIC_MASKS,
    TRAIN_SUMMARY,
)
from metricad.report.headline import map_headline
from metricad.report.plots import save_figure, targets_figure, write_gradcam_figures
from metricad.runtime import make_deterministic, select_device


def main() -> None:
    params = load_params()
    cam = params.gradcam
    make_deterministic(params.train.seed)
    device = select_device(params.runtime.device)
    model = load_checkpoint(MODEL, expected_arch=arch_from_params(params, recorded_framing()))
    real, warnings = rows_to_map(read_manifest(RESIZED_MANIFEST), cam.train_images)
    synthetic_images = torch.from_numpy(np.load(SYNTHETIC_IMAGES))
    rows = pd.concat([real, synthetic_rows(len(synthetic_images))]).reset_index(drop=True)
    images = torch.cat([load_image_tensor(real), synthetic_images])
    maps, peaks, classes, *_ = heatmaps_for_images(
        model,
        images,
        device,
        params.runtime.inference_batch_size,
        cam.target,
        cam.layer,
        cam.method,
        amp=params.runtime.amp,
    )
    maps, peaks = maps.numpy().astype(np.float32), peaks.numpy()
    masks = np.concatenate(
        [load_mask_array(real, model.encoder.input_size), np.load(SYNTHETIC_MASKS)]
    )
    scored = score_maps(rows, maps, masks, peaks, cam)
    for warning in warnings + scored.warnings:
        print(f"warning: {warning}")

    index = rows[["path", "split", "label", "defect"]].copy()
    index["peak"] = peaks.round(6)
    index["target_class"] = classes.numpy()
    index["kind"] = scored.kinds
    fresh_folder(HEATMAPS_DIR)
    folder = fresh_folder(PLOTS_DIR / "gradcam")
    write_npy(HEATMAPS, maps)
    write_csv(HEATMAP_INDEX, index)
    pixels = images.permute(0, 2, 3, 1).numpy()
    trained = read_json(TRAIN_SUMMARY)
    synthetic_kind = trained["synthetic_anomalies_used"]
    measured = scored.metrics
    own_maps = network_maps(
        model, images, params.runtime.inference_batch_size, device, params.runtime.amp
    )
    for name, heat in own_maps.items():  # the network's own maps: segmentation, patch
        by_own = score_maps(rows, heat, masks, heat.max(axis=(1, 2)), cam)
        measured = measured | {name: by_own.metrics}
        write_npy(HEATMAPS_DIR / f"{name}.npy", heat)
        write_gradcam_figures(
            folder / name,
            rows,
            pixels,
            heat,
            masks,
            by_own.kinds,
            KINDS,
            f"{name} map, {trained['epochs']} epochs",
            synthetic_kind,
        )
    write_json(METRICS_DIR / "gradcam.json", measured)
    headlines = fresh_folder(MAP_HEADLINES)
    write_json(headlines / f"{cam.method}.json", map_headline(measured))
    for name in own_maps:
        write_json(headlines / f"{name}.json", map_headline(measured[name]))
    # predict explains new images the same way (serving/detector.py).
    write_json(
        INFERENCE_SETTINGS,
        {"cam": {"method": cam.method, "layer": cam.layer, "target": cam.target}},
    )
    describe = f"{cam.method}, {cam.layer}, target {cam.target}, {trained['epochs']} epochs"
    write_gradcam_figures(
        folder, rows, pixels, maps, masks, scored.kinds, KINDS, describe, synthetic_kind
    )
    # One test image per defect type, explained for both classes (configured method, HiResCAM).
    firsts = rows[(rows["split"] == "test") & (rows["label"] == 1)].groupby("defect").head(1)
    chosen = firsts.index.tolist()
    methods = tuple(dict.fromkeys((cam.method, "hirescam"))) if chosen else ()
    per_target = maps_per_target(model, images[chosen], device, cam.layer, methods)
    figure = targets_figure(
        pixels[chosen], masks[chosen], firsts["defect"].tolist(), per_target, cam.layer
    )
    save_figure(figure, folder / "targets.png")


if __name__ == "__main__":
    run_stage(main)
