"""Which synthetic anomalies teach the network to find the demo's real defects? (issue 8)

Trains on the resized data (after `dvc repro resize`) under both protocols and prints, per
setting, the image AUROC of every score on the whole test split, and per defect type:
- article: the manifest's split (good + a share of each defect type in training);
- good-only: MVTec's protocol, training on train/good only, testing on every test image,
  with each kind of synthetic anomaly.
Usage: python scripts/good_only_survey.py [--epochs 300] [--kinds cutpaste scar] [--device cpu]
       [--variants synthetic_jitter=0.1 dropout=0.0,lr=0.0001 area=0.005:0.03]
(each variant runs with each kind).
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import argparse
import dataclasses
import time

import numpy as np

from metricad import anomalies
from metricad.anomalies import CHOICES
from metricad.checkpoint import arch_from_params, model_from_arch
from metricad.data import labels_tensor, load_image_tensor
from metricad.errors import run_stage
from metricad.inference import embed_and_score
from metricad.layout import read_manifest
from metricad.metrics import auroc_by_defect
from metricad.params import load_params
from metricad.paths import RESIZED_MANIFEST
from metricad.runtime import make_deterministic, select_device
from metricad.scores import SCORES, anomaly_scores
from metricad.training import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--kinds", nargs="+", default=["cutpaste", "scar", "noise", "mixed"])
    parser.add_argument("--shares", nargs="+", type=float, default=[0.5])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--article", action="store_true", help="also the article's protocol")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--variants", nargs="+", default=[""])
    args = parser.parse_args()
    params = load_params()
    epochs = args.epochs or params.epochs
    device = select_device(args.device or params.train.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    settings = [
        ("good-only", kind, share, variant)
        for variant in args.variants
        for kind in args.kinds
        for share in args.shares
    ]
    if args.article:
        settings.insert(0, ("article", "none", 0.0, ""))
    default_area = anomalies.AREA_RANGE
    for seed in args.seeds:
        for protocol, kind, share, variant in settings:
            model_params, train_changes = params.model, {}
            anomalies.AREA_RANGE = default_area
            for item in filter(None, variant.split(",")):
                key, value = item.split("=")
                if key == "area":
                    anomalies.AREA_RANGE = tuple(float(v) for v in value.split(":"))
                elif key == "dropout":
                    model_params = dataclasses.replace(model_params, dropout=float(value))
                else:
                    train_changes[key] = float(value)
            if kind not in CHOICES:
                raise SystemExit(f"unknown kind {kind}")
            column = "split" if protocol == "article" else "mvtec_split"
            train_rows = manifest[manifest[column] == "train"]
            test_rows = manifest[manifest[column] == "test"]
            train_params = dataclasses.replace(
                params.train,
                synthetic_anomalies=kind,
                synthetic_share=share,
                seed=seed,
                **train_changes,
            )
            make_deterministic(seed)
            model = model_from_arch(
                arch_from_params(dataclasses.replace(params, model=model_params))
            )
            start = time.perf_counter()
            train(
                model,
                load_image_tensor(train_rows),
                labels_tensor(train_rows),
                train_params,
                epochs,
                device,
                progress=False,
            )
            seconds = time.perf_counter() - start
            rows = manifest.loc[list(train_rows.index) + list(test_rows.index)]
            embeddings, probabilities = embed_and_score(
                model,
                load_image_tensor(rows),
                params.train.inference_batch_size,
                device,
                progress=False,
            )
            is_test = np.arange(len(rows)) >= len(train_rows)
            reference = ~is_test & (rows["label"].to_numpy() == 0)
            report = anomaly_scores(SCORES, embeddings, probabilities[:, 1], reference, args.k)
            cells = []
            for name in SCORES:
                result = auroc_by_defect(
                    rows["label"].to_numpy()[is_test],
                    report.scores[name][is_test],
                    rows["defect"].to_numpy()[is_test],
                )
                per_defect = " ".join(
                    f"{d[:4]}={v:.2f}" for d, v in result["auroc_per_defect"].items()
                )
                cells.append(f"{name}={result['auroc']:.3f} ({per_defect})")
            print(
                f"seed {seed} {protocol:9s} {kind:8s} share {share:.2f} {variant or '-':22s} "
                f"{epochs} ep {seconds:6.1f} s | " + " | ".join(cells),
                flush=True,
            )


if __name__ == "__main__":
    run_stage(main)
