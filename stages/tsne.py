"""Stage `tsne`: the article's three t-SNE maps (train, test, train+test) and separation scores.

The train and train+test maps also hold the fixed sample of synthetic anomalies (their own
marker), so a map shows whether the real defects land where the synthetic ones do.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np
import pandas as pd

from metricad.errors import run_stage
from metricad.files import atomic_path, fresh_folder, write_json
from metricad.params import load_params
from metricad.paths import (
    EMBEDDINGS,
    METRICS_DIR,
    PLOTS_DIR,
    PREDICTIONS,
    SYNTHETIC_EMBEDDINGS,
    SYNTHETIC_PREDICTIONS,
)
from metricad.plots import SYNTHETIC_DEFECT, save_figure, tsne_figure
from metricad.tsne import nearest_is_synthetic, silhouette, tsne_map, usable_perplexity

MAPS = {"train": "train data", "test": "test data", "all": "train + test data (one fit)"}


def main() -> None:
    params = load_params()
    embeddings = np.load(EMBEDDINGS)
    predictions = pd.read_csv(PREDICTIONS, keep_default_na=False)
    synthetic_vectors = np.load(SYNTHETIC_EMBEDDINGS)
    synthetic = pd.read_csv(SYNTHETIC_PREDICTIONS, keep_default_na=False)
    synthetic_rows = pd.DataFrame(
        {"label": 1, "defect": SYNTHETIC_DEFECT, "split": "train"}, index=range(len(synthetic))
    )
    scores, used = {}, {}
    fresh_folder(PLOTS_DIR / "tsne")
    for name, title in MAPS.items():
        chosen = (predictions["split"] == name).to_numpy() if name != "all" else slice(None)
        rows, vectors = predictions[chosen], embeddings[chosen]
        real = len(rows)
        if name != "test":
            rows = pd.concat([rows, synthetic_rows], ignore_index=True)
            vectors = np.concatenate([vectors, synthetic_vectors])
        perplexity = usable_perplexity(params.tsne.perplexity, len(vectors))
        used[name] = perplexity
        if perplexity is None:
            print(f"warning: tsne: the {name} map has {len(vectors)} image(s); no map drawn")
            points = np.full((len(vectors), 2), np.nan, dtype=np.float32)
        else:
            if perplexity != params.tsne.perplexity:
                print(
                    f"warning: tsne.perplexity={params.tsne.perplexity} is not below the number "
                    f"of images in the {name} map ({len(vectors)}); used {perplexity}"
                )
            points = tsne_map(vectors, perplexity, params.tsne.seed, params.tsne.max_iter)
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
        # Separation of the real images only: the synthetic sample would flatter it.
        scores[name] = {
            "tsne_2d": silhouette(points[:real], labels[:real]),
            "embedding": silhouette(vectors[:real], labels[:real], metric="cosine"),
        }
    is_test = (predictions["split"] == "test").to_numpy()
    good_train = (predictions["split"] == "train").to_numpy() & (predictions["label"] == 0)
    write_json(
        METRICS_DIR / "tsne.json",
        {
            "silhouette": scores,
            "perplexity": used,
            "synthetic": nearest_is_synthetic(
                embeddings[is_test],
                predictions["label"].to_numpy()[is_test],
                embeddings[good_train.to_numpy()],
                synthetic_vectors,
            ),
        },
    )


if __name__ == "__main__":
    run_stage(main)
