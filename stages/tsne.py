"""Stage `tsne`: the article's three t-SNE maps (train, test, train+test) and separation scores."""

import numpy as np
import pandas as pd

from metricad.errors import run_stage
from metricad.files import atomic_path, write_json
from metricad.params import load_params
from metricad.paths import EMBEDDINGS, METRICS_DIR, PLOTS_DIR, PREDICTIONS
from metricad.plots import save_figure, tsne_figure
from metricad.tsne import silhouette, tsne_map

MAPS = {"train": "train data", "test": "test data", "all": "train + test data (one fit)"}


def main() -> None:
    params = load_params()
    embeddings = np.load(EMBEDDINGS)
    predictions = pd.read_csv(PREDICTIONS, keep_default_na=False)
    scores = {}
    for name, title in MAPS.items():
        chosen = (predictions["split"] == name).to_numpy() if name != "all" else slice(None)
        rows, vectors = predictions[chosen], embeddings[chosen]
        points = tsne_map(
            vectors, params.tsne.perplexity, params.tsne.seed, params.tsne.max_iter, name=name
        )
        labels = rows["label"].to_numpy()
        table = pd.DataFrame(
            {
                "x": points[:, 0].round(4),
                "y": points[:, 1].round(4),
                "class": np.where(labels == 1, "anomalous", "good"),
                "defect": rows["defect"].to_numpy(),
                "split": rows["split"].to_numpy(),
            }
        )
        with atomic_path(PLOTS_DIR / "tsne" / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
        is_train = (rows["split"] == "train").to_numpy() if name == "all" else None
        figure = tsne_figure(
            points,
            labels,
            rows["defect"].tolist(),
            f"t-SNE, {title} ({params.epochs} epochs)",
            is_train,
        )
        save_figure(figure, PLOTS_DIR / "tsne" / f"{name}.png")
        scores[name] = {
            "tsne_2d": silhouette(points, labels),
            "embedding": silhouette(vectors, labels, metric="cosine"),
        }
    write_json(METRICS_DIR / "tsne.json", {"silhouette": scores})


if __name__ == "__main__":
    run_stage(main)
