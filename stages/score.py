"""Stage `score`: fit the embedding scores on the good training images, and set every
score's operating point on the good validation images (never on a defect, never on the test
split); write both once, as models/scorer.npz, for evaluate and predict."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np

from metricad.errors import run_stage
from metricad.files import read_csv
from metricad.layout import validation_rows
from metricad.params import load_params
from metricad.paths import EMBEDDINGS, PREDICTIONS, SCORER
from metricad.scores import Scoring, fit_scorer, operating_point, save_scoring


def main() -> None:
    params = load_params()
    settings = params.evaluate
    predictions = read_csv(PREDICTIONS)
    embeddings = np.load(EMBEDDINGS)
    split, labels = predictions["split"].to_numpy(), predictions["label"].to_numpy()
    good_train = (split == "train") & (labels == 0)
    scorer, warnings = fit_scorer(embeddings[good_train], settings.knn_k, settings.scores)
    validation, fallback = validation_rows(split, labels)
    warnings += fallback
    probabilities = predictions["prob_anomalous"].to_numpy()
    values = scorer.scores(settings.scores, embeddings[validation], probabilities[validation])
    points = {
        name: operating_point(
            values[name],
            settings.threshold_method,
            settings.threshold_quantile,
            settings.threshold_sd,
        )
        for name in settings.scores
    }
    for warning in warnings:
        print(f"warning: {warning}")
    cam = params.gradcam
    scoring = Scoring(scorer, tuple(settings.scores), points, settings.verdict_score)
    save_scoring(SCORER, scoring, {"cam": [cam.method, cam.layer, cam.target]})


if __name__ == "__main__":
    run_stage(main)
