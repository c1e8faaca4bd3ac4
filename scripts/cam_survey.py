"""Localization of every CAM method x layer x target on the trained model (after `dvc repro`).

Prints one line per combination: pointing game, pixel AUROC, AUPRO and the four kinds, on the
test split, scored as the gradcam stage scores them (score_maps: the IoU threshold chosen on the
anomalous training images, the tolerance and thresholds of params.yaml).
Usage: python scripts/cam_survey.py
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import itertools

from metricad.analysis.gradcam import METHODS, TARGETS, heatmaps_for_images
from metricad.analysis.localization import rows_to_map, score_maps
from metricad.data.batches import load_image_tensor, load_mask_array
from metricad.data.manifest import read_manifest
from metricad.errors import run_stage
from metricad.model.checkpoint import load_checkpoint
from metricad.params import load_params
from metricad.paths import MODEL, RESIZED_MANIFEST
from metricad.runtime import make_deterministic, select_device

LAYERS = ("layer2", "layer3", "layer4")


def main() -> None:
    params = load_params()
    cam = params.gradcam
    make_deterministic(params.train.seed)
    device = select_device(params.runtime.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    rows, _ = rows_to_map(manifest, cam.train_images)
    model = load_checkpoint(MODEL)
    images = load_image_tensor(rows)
    masks = load_mask_array(rows, params.resize.size)
    print("method     layer   target     pointing  pixel_auroc  aupro  kinds")
    for method, layer, target in itertools.product(METHODS, LAYERS, TARGETS):
        maps, peaks, *_ = heatmaps_for_images(
            model,
            images,
            device,
            params.runtime.inference_batch_size,
            target,
            layer,
            method,
            progress=False,
        )
        summary = score_maps(rows, maps.numpy(), masks, peaks.numpy(), cam).metrics["test"]
        print(
            f"{method:10s} {layer}  {target:9s}  {summary['pointing_game']:8.2f}  "
            f"{summary['pixel_auroc']:11.3f}  {summary['aupro']:5.3f}  {summary['kinds']}"
        )


if __name__ == "__main__":
    run_stage(main)
