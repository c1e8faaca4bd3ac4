"""Stage `gradcam`: heatmaps of the target class, measured against the ground-truth masks.

Writes the raw maps, the article's side-by-side figures, one gallery per kind
(correct / inverted / near miss / no response) and the localization scores. The synthetic
training anomalies are mapped too (their masks are known): does the network point at what
it was taught, and, without anomalous train images, they choose the IoU threshold.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from metricad.checkpoint import arch_from_params, load_checkpoint
from metricad.data import load_image_tensor, load_mask_array
from metricad.errors import run_stage
from metricad.files import atomic_path, fresh_folder, write_json
from metricad.gradcam import heatmaps_for_images
from metricad.images import save_png
from metricad.layout import read_manifest
from metricad.localization import KINDS, choose_iou_threshold, classify_kinds, localization_summary
from metricad.params import load_params
from metricad.paths import (
    HEATMAP_INDEX,
    HEATMAPS,
    HEATMAPS_DIR,
    METRICS_DIR,
    MODEL,
    PLOTS_DIR,
    RESIZED_MANIFEST,
    SYNTHETIC_IMAGES,
    SYNTHETIC_MASKS,
)
from metricad.plots import (
    NO_SYNTHETIC,
    SYNTHETIC_DEFECT,
    gallery_figure,
    gradcam_panel,
    save_figure,
)
from metricad.runtime import make_deterministic, select_device

GALLERY_SIZE = 12  # panels per kind gallery; the counts in metrics/ cover every image
DEFAULT_IOU_THRESHOLD = 0.5  # used only when no real or synthetic train anomaly has a mask


def main() -> None:
    params = load_params()
    cam = params.gradcam
    make_deterministic(params.train.seed)
    device = select_device(params.train.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    model = load_checkpoint(MODEL, expected_arch=arch_from_params(params))

    test = manifest[manifest["split"] == "test"]
    train = manifest[(manifest["split"] == "train") & (manifest["label"] == 1)]
    if 0 < len(train) < cam.train_images:
        print(
            f"warning: gradcam.train_images={cam.train_images} is above the number of anomalous "
            f"training images ({len(train)}); mapped {len(train)}"
        )
    real = pd.concat([test, train.head(cam.train_images)])
    synthetic_images = torch.from_numpy(np.load(SYNTHETIC_IMAGES))
    synthetic = pd.DataFrame(
        {
            "path": [f"synthetic/{n:03d}" for n in range(len(synthetic_images))],
            "label": 1,
            "defect": SYNTHETIC_DEFECT,
            "split": SYNTHETIC_DEFECT,
        }
    )
    rows = pd.concat([real, synthetic]).reset_index(drop=True)
    images = torch.cat([load_image_tensor(real), synthetic_images])
    maps, peaks, classes = heatmaps_for_images(
        model,
        images,
        device,
        params.train.inference_batch_size,
        cam.target,
        cam.layer,
        cam.method,
        amp=params.train.amp,
    )
    maps, peaks = maps.numpy().astype(np.float32), peaks.numpy()
    masks = np.concatenate([load_mask_array(real, params.resize.size), np.load(SYNTHETIC_MASKS)])

    split = rows["split"].to_numpy()
    is_test = split == "test"
    anomalous = (rows["label"] == 1).to_numpy()
    has_mask = masks.any(axis=(1, 2))
    # An anomalous image without a mask cannot be scored: its defect pixels are unknown.
    scored = ~anomalous | has_mask
    train_scored = (split == "train") & has_mask
    synthetic_scored = (split == SYNTHETIC_DEFECT) & has_mask
    # The IoU threshold is chosen on training images only: the real anomalous ones, or
    # without them (good-only training) the synthetic anomalies made from the good ones.
    chooser = train_scored if train_scored.any() else synthetic_scored
    iou_threshold = (
        choose_iou_threshold(maps[chooser], masks[chooser])
        if chooser.any()
        else DEFAULT_IOU_THRESHOLD
    )
    options = {
        "tolerance_px": cam.tolerance_px,
        "min_peak": cam.min_peak,
        "flat_fraction": cam.flat_fraction,
    }
    metrics = {
        name: localization_summary(
            maps[chosen],
            masks[chosen],
            peaks[chosen],
            iou_threshold=iou_threshold,
            fpr_limit=cam.fpr_limit,
            **options,
        )
        for name, chosen in (
            ("test", is_test & scored),
            ("train", train_scored),
            ("synthetic", synthetic_scored),
        )
        if (chosen & anomalous).any()
    }
    metrics["anomalous_without_mask"] = int((anomalous & ~has_mask).sum())
    metrics["train_images_used"] = int((split == "train").sum())
    unscored = rows.loc[anomalous & ~has_mask, "path"].tolist()
    if unscored:
        print(
            f"warning: gradcam: {len(unscored)} defect image(s) without a mask left out of "
            f"the localization scores: {', '.join(unscored[:10])}"
        )
    kinds = np.full(len(rows), "", dtype=object)
    if has_mask.any():
        kinds[has_mask] = classify_kinds(
            maps[has_mask], masks[has_mask], peaks[has_mask], **options
        )

    index = rows[["path", "split", "label", "defect"]].copy()
    index["peak"] = peaks.round(6)
    index["target_class"] = classes.numpy()
    index["kind"] = kinds
    fresh_folder(HEATMAPS_DIR)
    fresh_folder(PLOTS_DIR / "gradcam")
    with atomic_path(HEATMAPS) as tmp, open(tmp, "wb") as handle:
        np.save(handle, maps)
    with atomic_path(HEATMAP_INDEX) as tmp:
        index.to_csv(tmp, index=False)
    write_json(METRICS_DIR / "gradcam.json", metrics)
    pixels = images.permute(0, 2, 3, 1).numpy()
    _draw(rows, pixels, maps, masks, kinds, is_test, params)
    _draw_targets(model, rows, images, pixels, masks, device, params)


def _draw(rows, images, maps, masks, kinds, is_test, params) -> None:
    """The article's per-image figures (real images), one gallery per kind (test images) and
    one of the synthetic training anomalies."""
    panels = [gradcam_panel(images[i], maps[i], masks[i]) for i in range(len(rows))]
    folder = PLOTS_DIR / "gradcam"
    synthetic = (rows["split"] == SYNTHETIC_DEFECT).to_numpy()
    for i, row in rows[~synthetic].iterrows():
        name = f"{row['split']}_{row['defect']}_{Path(row['path']).stem}.png"
        save_png(panels[i], folder / "images" / name)
    cam = params.gradcam
    chosen = np.flatnonzero(synthetic)[:GALLERY_SIZE]
    figure = gallery_figure(
        [panels[i] for i in chosen],
        [f"synthetic {Path(rows['path'][i]).stem}: {kinds[i].replace('_', ' ')}" for i in chosen],
        f"synthetic training anomalies ({params.train.synthetic_anomalies}; white: pasted area)",
        empty_text=NO_SYNTHETIC,
    )
    save_figure(figure, folder / "synthetic.png")
    for kind in KINDS:
        chosen = [i for i in range(len(rows)) if is_test[i] and kinds[i] == kind]
        title = (
            f"{kind.replace('_', ' ')}: {len(chosen)} test defect images "
            f"({cam.method}, {cam.layer}, target {cam.target}, {params.epochs} epochs)"
        )
        captions = [
            f"{rows['defect'][i]} {Path(rows['path'][i]).stem}" for i in chosen[:GALLERY_SIZE]
        ]
        figure = gallery_figure([panels[i] for i in chosen[:GALLERY_SIZE]], captions, title)
        save_figure(figure, folder / "kinds" / f"{kind}.png")


def _draw_targets(model, rows, images, pixels, masks, device, params) -> None:
    """One test image per defect type, explained for each target class, with the configured
    method and with HiResCAM: the defect lowers the 'good' score, so for that target its
    contribution is negative, the CAM's ReLU removes it and the heat moves to intact areas
    (the article's "inverted" maps)."""
    cam = params.gradcam
    firsts = rows[(rows["split"] == "test") & (rows["label"] == 1)].groupby("defect").head(1)
    chosen = firsts.index.tolist()
    panels, captions = [], []
    for method in dict.fromkeys((cam.method, "hirescam")) if chosen else ():
        for target in ("anomalous", "good"):
            maps, _, _ = heatmaps_for_images(
                model,
                images[chosen],
                device,
                max(len(chosen), 1),
                target,
                cam.layer,
                method,
                progress=False,
            )
            for n, i in enumerate(chosen):
                panels.append(gradcam_panel(pixels[i], maps[n].numpy(), masks[i]))
                captions.append(f"{rows['defect'][i]}: {method}, target {target}")
    figure = gallery_figure(
        panels,
        captions,
        f"{cam.layer}: the class explained decides where the heat goes",
        columns=max(1, len(chosen)),
    )
    save_figure(figure, PLOTS_DIR / "gradcam" / "targets.png")


if __name__ == "__main__":
    run_stage(main)
