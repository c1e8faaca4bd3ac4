"""How `embed.views: dihedral` was chosen: three ways to score the same trained networks.

    python scripts/views_screen.py --states surveys/epochs/.states \
        --settings good-only good-only-shift8 good-only-avgpool good-only-lr3e-4 --seeds 0 1 2 3 4

For each saved training state `<states>/<setting>-seed<N>.pt` (scripts/survey.py keeps the
last one of each setting and seed), the test Gaussian AUROC of its network three ways:
`single`, the image as it is (the pipeline's default); `mean embedding`, one Gaussian of the
mean of each image's 8 unit view embeddings; `views`, the Gaussian fitted on every view of the
good training images and an image scored by the mean of its views' scores (`embed.views:
dihedral`). Nothing is retrained. Run it in a project whose last `dvc repro` was a good-only
one (data/resized holds that split), e.g. the clone a good-only survey ran in.
"""

from __future__ import annotations

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.metrics import roc_auc_score
from survey_settings import SETTINGS, cell_params  # shared by the scripts

from metricad.analysis.tsne import per_image
from metricad.data.batches import load_image_tensor
from metricad.data.manifest import read_manifest
from metricad.errors import MetricadError, run_stage
from metricad.model.checkpoint import safe_load
from metricad.model.inference import embed_and_score
from metricad.model.resume import training_state_from
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.params import ScoreParams, params_from_dict
from metricad.paths import RESIZED_MANIFEST
from metricad.scoring.head import fitted_head

WAYS = ("single", "mean embedding", "views")


def gaussian_aurocs(
    views: np.ndarray, split: np.ndarray, labels: np.ndarray, settings: ScoreParams
) -> dict[str, float]:
    """The test Gaussian AUROC of (N, 8, D) view embeddings, each of the three ways, through
    the pipeline's scoring head (fitted on the good training images)."""
    embeddings = {
        "single": views[:, :1],
        "mean embedding": per_image(views)[:, None],
        "views": views,
    }
    test, no_probability = split == "test", np.zeros(len(views))
    aurocs = {}
    for way, vectors in embeddings.items():
        head, _ = fitted_head(
            ["gaussian"], "gaussian", vectors, no_probability, {}, split, labels, settings
        )
        values = head.score_values(
            torch.from_numpy(vectors[test]), torch.from_numpy(no_probability[test])
        )
        aurocs[way] = float(roc_auc_score(labels[test], values[:, 0].numpy()))
    return aurocs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python scripts/views_screen.py", description=__doc__)
    parser.add_argument("--states", type=Path, default=Path("surveys/epochs/.states"))
    parser.add_argument("--settings", nargs="+", required=True, choices=SETTINGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    manifest = read_manifest(RESIZED_MANIFEST)
    split, labels = manifest["split"].to_numpy(), manifest["label"].to_numpy()
    if labels[split == "train"].any():
        raise MetricadError(
            f"{RESIZED_MANIFEST}: defect images in training: run a good-only cell first"
        )
    images, base = load_image_tensor(manifest), yaml.safe_load(Path("params.yaml").read_text())
    for setting in args.settings:
        rows = []
        for seed in args.seeds:
            path = args.states / f"{setting}-seed{seed}.pt"
            state = training_state_from(safe_load(path, "training state"))
            params = params_from_dict(cell_params(base, setting, seed, state.epoch))
            model = model_from_arch(arch_from_params(params))
            model.load_state_dict(state.final_weights())
            views, _, _ = embed_and_score(
                model, images, 64, torch.device("cpu"), False, views="dihedral"
            )
            rows.append(gaussian_aurocs(views, split, labels, params.score))
            print(
                f"{setting} seed {seed} ({state.epoch} epochs): "
                + ", ".join(f"{w} {rows[-1][w]:.4f}" for w in WAYS),
                flush=True,
            )
        for way in WAYS:
            values = [row[way] for row in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            mean = statistics.mean(values)
            print(f"{setting}: {way} {mean:.4f} ± {spread:.4f} (min {min(values):.4f})")


if __name__ == "__main__":
    run_stage(main)
