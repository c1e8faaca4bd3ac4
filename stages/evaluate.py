"""Stage `evaluate`: the softmax classification at the article's cut (test, and train+test),
and for every anomaly score (softmax, kNN, Gaussian) its test image AUROC, overall and per
defect, and how its operating point does (false positives on the good test images, recall on
the test defects), with ROC curves; a headline file per score (report/headline.py)."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np
import torch

from metricad.analysis import metrics
from metricad.errors import run_stage
from metricad.files import fresh_folder, read_csv, write_csv, write_json
from metricad.params import load_params
from metricad.paths import EMBEDDINGS, METRICS_DIR, PLOTS_DIR, PREDICTIONS, SCORE_HEADLINES, SCORER
from metricad.report.headline import score_headline
from metricad.scoring.head import network_columns
from metricad.scoring.scorer_file import load_scoring


def main() -> None:
    params = load_params()
    cut = params.evaluate.threshold
    predictions = read_csv(PREDICTIONS)
    head = load_scoring(SCORER)
    is_test = (predictions["split"] == "test").to_numpy()
    test = predictions[is_test]
    labels, defects = test["label"].to_numpy(), test["defect"].tolist()
    probabilities = predictions["prob_anomalous"].to_numpy()
    results = {
        scope: metrics.classification_metrics(
            rows["label"].to_numpy(),
            rows["prob_anomalous"].to_numpy(),
            rows["defect"].tolist(),
            cut,
        )
        for scope, rows in (
            ("test", test),
            ("train_and_test", predictions[predictions["split"] != "validation"]),
        )
    }
    # The embedding scores measure distance to the good training images, so only test
    # images (never seen in training) are scored.
    all_values = head.score_values(
        torch.from_numpy(np.load(EMBEDDINGS)),
        torch.tensor(probabilities),
        network_columns(predictions, slice(None)),
    ).numpy()
    values = {name: all_values[is_test, i] for i, name in enumerate(head.names)}
    results["scores"] = {
        name: metrics.auroc_by_defect(labels, v, defects) for name, v in values.items()
    }
    thresholds = head.thresholds.tolist()
    results["operating_points"] = {
        name: metrics.at_operating_point(labels, v > thresholds[i], defects, thresholds[i])
        for i, (name, v) in enumerate(values.items())
    }
    results["score_settings"] = head.used()
    write_json(METRICS_DIR / "evaluate.json", results)
    headlines = fresh_folder(SCORE_HEADLINES)
    for name in head.names:
        write_json(
            headlines / f"{name}.json",
            score_headline(results["scores"][name], results["operating_points"][name]),
        )
    folder = fresh_folder(PLOTS_DIR / "evaluate")
    write_csv(folder / "roc.csv", metrics.roc_curves(labels, values))
    predicted = (test["prob_anomalous"].to_numpy() >= cut).astype(int)
    write_csv(folder / "confusion.csv", metrics.confusion_table(labels, predicted))


if __name__ == "__main__":
    run_stage(main)
