"""Stage `train`: fine-tune ResNet18 + metric head on the training split; save one checkpoint."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import hashlib
import json
from pathlib import Path

import pandas as pd
import torch

from dvclive import Live
from metricad import anomalies, data, runtime, torch_model, training
from metricad.checkpoint import (
    arch_from_params,
    load_backbone_weights,
    load_training_state,
    model_from_arch,
    save_checkpoint,
    save_training_state,
)
from metricad.data import labels_tensor, load_image_tensor
from metricad.errors import run_stage
from metricad.files import write_json
from metricad.layout import read_manifest
from metricad.numerics import pinned
from metricad.params import load_params, params_to_dict
from metricad.paths import LIVE_DIR, METRICS_DIR, MODEL, RESIZED_MANIFEST, TRAIN_STATE
from metricad.runtime import make_deterministic, select_device
from metricad.training import settings_for_data, train

# The modules whose code decides the trained weights (part of the resume fingerprint).
TRAINING_CODE = (training, torch_model, anomalies, data, runtime)
# History keys -> DVCLive metric names (dvclive/plots/metrics/<name>.tsv).
LIVE_NAMES = {
    "train_loss": "train/loss",
    "train_accuracy": "train/accuracy",
    "test_loss": "test/loss",
    "test_accuracy": "test/accuracy",
}


def main() -> None:
    params = load_params()
    make_deterministic(params.train.seed)
    device = select_device(params.train.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    train_rows = manifest[manifest["split"] == "train"]
    test_rows = manifest[manifest["split"] == "test"]
    real_anomalies = int(train_rows["label"].sum())
    train_params, warnings = settings_for_data(params, len(train_rows), real_anomalies)
    for warning in warnings:
        print(f"warning: {warning}")
    images, labels = load_image_tensor(train_rows), labels_tensor(train_rows)
    monitor = (load_image_tensor(test_rows), labels_tensor(test_rows))

    model = model_from_arch(arch_from_params(params))
    load_backbone_weights(model, params.model.weights)
    # The resume state is only valid for the very same params and training images.
    run = {k: v for k, v in params_to_dict(params).items() if k in ("epochs", "model", "train")}
    digest = hashlib.sha256(json.dumps(run, sort_keys=True).encode())
    digest.update(images.numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    # ... and the same code: a state saved by other training code would continue another run.
    for module in TRAINING_CODE:
        digest.update(Path(module.__file__).read_bytes())
    digest.update(torch.__version__.encode())
    fingerprint = digest.hexdigest()
    resume = load_training_state(TRAIN_STATE, fingerprint)
    if resume is not None:
        print(f"train: resuming from epoch {resume.epoch} ({TRAIN_STATE})")

    # DVCLive rewrites its metrics.json and appends to its plots after every epoch, so
    # `dvc exp show` follows a running (or queued) experiment, and `dvc plots show` one
    # running in the workspace.
    with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) as live:

        def log(row: dict[str, float]) -> None:
            live.step = int(row["epoch"])
            for key, value in row.items():
                if key != "epoch":
                    live.log_metric(LIVE_NAMES.get(key, key), value)
            live.next_step()

        for row in resume.history if resume is not None else []:
            log(row)  # a resumed run's output folder starts empty: log the epochs done
        history = train(
            model,
            images,
            labels,
            train_params,
            params.epochs,
            device,
            monitor=monitor,
            resume=resume,
            save_state=lambda state: save_training_state(TRAIN_STATE, state, fingerprint),
            save_every=params.train.checkpoint_every,
            on_epoch=log,
        )
    save_checkpoint(MODEL, model, params)

    table = pd.DataFrame(history)
    last = history[-1]
    summary = {key: value for key, value in last.items() if key != "epoch"}
    summary |= {
        "epochs": params.epochs,
        "n_train": len(train_rows),
        "n_train_anomalous": real_anomalies,
        "batch_size_used": train_params.batch_size,
        "synthetic_anomalies_used": train_params.synthetic_anomalies,
        "numerics": pinned(),
    }
    if "test_accuracy" in table:
        best = table.loc[table["test_accuracy"].idxmax()]
        summary |= {
            "best_test_accuracy": float(best["test_accuracy"]),
            "best_test_accuracy_epoch": int(best["epoch"]),
        }
    write_json(METRICS_DIR / "train.json", summary)


if __name__ == "__main__":
    run_stage(main)
