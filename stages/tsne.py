"""Stage `tsne`: the article's three t-SNE maps (train, test, train+test) and separation scores.

The train and train+test maps also hold the fixed sample of synthetic anomalies (their own
marker), so a map shows whether the real defects land where the synthetic ones do.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np

from metricad.analysis.tsne import nearest_is_synthetic, per_image, tsne_maps
from metricad.errors import run_stage
from metricad.files import fresh_folder, read_csv, read_json, write_csv, write_json
from metricad.params import load_params
from metricad.paths import (
    EMBEDDINGS,
    METRICS_DIR,
    PLOTS_DIR,
    PREDICTIONS,
    SYNTHETIC_EMBEDDINGS,
    TRAIN_SUMMARY,
)
from metricad.report.plots import save_figure, tsne_figure


def main() -> None:
    params = load_params(without_torch=True)
    embeddings = per_image(np.load(EMBEDDINGS))
    predictions = read_csv(PREDICTIONS)
    synthetic = per_image(np.load(SYNTHETIC_EMBEDDINGS))
    epochs = read_json(TRAIN_SUMMARY)["epochs"]
    maps, warnings = tsne_maps(predictions, embeddings, synthetic, params.tsne)
    for warning in warnings:
        print(f"warning: {warning}")
    folder = fresh_folder(PLOTS_DIR / "tsne")
    for tsne in maps:
        write_csv(folder / f"{tsne.name}.csv", tsne.table())
        is_train = (tsne.rows["split"] == "train").to_numpy() if tsne.name == "all" else None
        figure = tsne_figure(
            tsne.points,
            tsne.rows["label"].to_numpy(),
            tsne.rows["defect"].tolist(),
            f"t-SNE, {tsne.title} ({epochs} epochs)",
            is_train,
        )
        save_figure(figure, folder / f"{tsne.name}.png")
    is_test = (predictions["split"] == "test").to_numpy()
    good_train = ((predictions["split"] == "train") & (predictions["label"] == 0)).to_numpy()
    write_json(
        METRICS_DIR / "tsne.json",
        {
            "silhouette": {tsne.name: tsne.separation() for tsne in maps},
            "perplexity": {tsne.name: tsne.perplexity for tsne in maps},
            "synthetic": nearest_is_synthetic(
                embeddings[is_test],
                predictions["label"].to_numpy()[is_test],
                embeddings[good_train],
                synthetic,
            ),
        },
    )


if __name__ == "__main__":
    run_stage(main)
