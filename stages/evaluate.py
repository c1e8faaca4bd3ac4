"""Stage `evaluate`: softmax classification scores on test and on train+test, and the image
AUROC of every anomaly score (softmax, kNN, Gaussian) on the test split, with ROC curves."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np
import pandas as pd

from metricad.errors import run_stage
from metricad.files import atomic_path, fresh_folder, write_json
from metricad.metrics import (
    auroc_by_defect,
    classification_metrics,
    confusion_table,
    roc_curve_table,
)
from metricad.params import load_params
from metricad.paths import EMBEDDINGS, METRICS_DIR, PLOTS_DIR, PREDICTIONS
from metricad.scores import anomaly_scores


def main() -> None:
    params = load_params()
    settings = params.evaluate
    threshold = settings.threshold
    predictions = pd.read_csv(PREDICTIONS, keep_default_na=False)
    test = predictions[predictions["split"] == "test"]
    results = {
        scope: classification_metrics(
            rows["label"].to_numpy(),
            rows["prob_anomalous"].to_numpy(),
            rows["defect"].tolist(),
            threshold,
        )
        for scope, rows in (("test", test), ("all", predictions))
    }
    # The embedding scores measure distance to the good training images, so only test
    # images (never seen in training) are scored.
    is_test = (predictions["split"] == "test").to_numpy()
    reference = (predictions["split"] == "train").to_numpy() & (predictions["label"] == 0)
    report = anomaly_scores(
        settings.scores,
        np.load(EMBEDDINGS),
        predictions["prob_anomalous"].to_numpy(),
        reference.to_numpy(),
        settings.knn_k,
    )
    for warning in report.warnings:
        print(f"warning: {warning}")
    labels = test["label"].to_numpy()
    results["scores"] = {
        name: auroc_by_defect(labels, values[is_test], test["defect"].tolist())
        for name, values in report.scores.items()
    }
    results["score_settings"] = report.used
    write_json(METRICS_DIR / "evaluate.json", results)
    fresh_folder(PLOTS_DIR / "evaluate")
    for name, values in report.scores.items():
        with atomic_path(PLOTS_DIR / "evaluate" / "roc" / f"{name}.csv") as tmp:
            roc_curve_table(labels, values[is_test]).to_csv(tmp, index=False)
    probabilities = test["prob_anomalous"].to_numpy()
    with atomic_path(PLOTS_DIR / "evaluate" / "confusion.csv") as tmp:
        confusion_table(labels, (probabilities >= threshold).astype(int)).to_csv(tmp, index=False)


if __name__ == "__main__":
    run_stage(main)
