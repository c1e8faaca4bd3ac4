"""Stage `synthesize`: a fixed, seeded sample of the synthetic anomalies `train` learned from
(the kind and colour jitter it used: metrics/train.json, their one owner).

`embed` embeds it (the t-SNE maps draw it beside the real defects) and the figure shows each
one next to the good image it was made from: what the network was taught.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import pandas as pd

from metricad.data.anomalies import synthetic_sample
from metricad.data.batches import load_image_tensor
from metricad.data.manifest import read_manifest
from metricad.errors import run_stage
from metricad.files import fresh_folder, read_json, write_csv, write_npy
from metricad.params import load_params
from metricad.paths import (
    PLOTS_DIR,
    RESIZED_MANIFEST,
    SYNTHETIC_IMAGES,
    SYNTHETIC_INDEX,
    SYNTHETIC_MASKS,
    SYNTHETIC_SAMPLE_DIR,
    TRAIN_SUMMARY,
)
from metricad.report.plots import save_figure, synthetic_figure

FIGURE_PAIRS = 8  # pairs in the figure; the whole sample is embedded


def main() -> None:
    params = load_params()
    manifest = read_manifest(RESIZED_MANIFEST)
    train = manifest[manifest["split"] == "train"]
    good = train[train["label"] == 0]
    images = load_image_tensor(good)
    # What `train` used (its fallback for too few defect images included), from train alone.
    trained = read_json(TRAIN_SUMMARY)
    kind = trained["synthetic_anomalies_used"]
    anomalies, masks, sources, kinds = synthetic_sample(
        images,
        params.synthesize.samples,
        kind,
        trained["synthetic_jitter_used"],
        params.synthesize.seed,
    )
    index = pd.DataFrame({"source": good["path"].to_numpy()[sources], "kind": kinds})
    fresh_folder(SYNTHETIC_SAMPLE_DIR)
    fresh_folder(PLOTS_DIR / "synthetic")
    write_npy(SYNTHETIC_IMAGES, anomalies.numpy())
    write_npy(SYNTHETIC_MASKS, masks.numpy())
    write_csv(SYNTHETIC_INDEX, index)
    shown = slice(0, FIGURE_PAIRS)
    figure = synthetic_figure(
        images[sources[shown]].permute(0, 2, 3, 1).numpy(),
        anomalies[shown].permute(0, 2, 3, 1).numpy(),
        masks[shown].numpy(),
        kinds[shown],
        f"synthetic anomalies taught in training (train.synthetic_anomalies: {kind})",
    )
    save_figure(figure, PLOTS_DIR / "synthetic" / "examples.png")


if __name__ == "__main__":
    run_stage(main)
