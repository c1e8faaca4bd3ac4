"""Stage `score`: fit the anomaly scores on the good training images, and set every score's
operating point on the good validation images (never on a defect, never on the test split);
write the head once, as models/scorer.npz, for evaluate and predict, with how the embeddings
were computed (embed's settings.json: views, batch size), which predict must repeat."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np

from metricad.errors import run_stage
from metricad.files import read_csv
from metricad.params import load_params
from metricad.paths import EMBEDDING_SETTINGS, EMBEDDINGS, PREDICTIONS, SCORER
from metricad.scoring.head import fitted_head, network_columns
from metricad.scoring.scorer_file import read_embedding_settings, save_scoring


def main() -> None:
    settings = load_params().score
    embedding = read_embedding_settings(EMBEDDING_SETTINGS)
    predictions = read_csv(PREDICTIONS)
    split, labels = predictions["split"].to_numpy(), predictions["label"].to_numpy()
    head, warnings = fitted_head(
        settings.scores,
        settings.verdict_score,
        np.load(EMBEDDINGS),
        predictions["prob_anomalous"].to_numpy(),
        network_columns(predictions, slice(None)),
        split,
        labels,
        settings,
    )
    for warning in warnings:
        print(f"warning: {warning}")
    save_scoring(SCORER, head, embedding)


if __name__ == "__main__":
    run_stage(main)
