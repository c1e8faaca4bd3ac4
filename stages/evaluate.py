"""Stage `evaluate`: softmax classification scores on test and on train+test, ROC, confusion."""

import pandas as pd

from metricad.errors import run_stage
from metricad.files import atomic_path, write_json
from metricad.metrics import classification_metrics, confusion_table, roc_curve_table
from metricad.params import load_params
from metricad.paths import METRICS_DIR, PLOTS_DIR, PREDICTIONS


def main() -> None:
    params = load_params()
    threshold = params.evaluate.threshold
    predictions = pd.read_csv(PREDICTIONS, keep_default_na=False)
    test = predictions[predictions["split"] == "test"]
    scores = {
        scope: classification_metrics(
            rows["label"].to_numpy(),
            rows["prob_anomalous"].to_numpy(),
            rows["defect"].tolist(),
            threshold,
        )
        for scope, rows in (("test", test), ("all", predictions))
    }
    write_json(METRICS_DIR / "evaluate.json", scores)
    labels, probabilities = test["label"].to_numpy(), test["prob_anomalous"].to_numpy()
    with atomic_path(PLOTS_DIR / "evaluate" / "roc.csv") as tmp:
        roc_curve_table(labels, probabilities).to_csv(tmp, index=False)
    with atomic_path(PLOTS_DIR / "evaluate" / "confusion.csv") as tmp:
        confusion_table(labels, (probabilities >= threshold).astype(int)).to_csv(tmp, index=False)


if __name__ == "__main__":
    run_stage(main)
