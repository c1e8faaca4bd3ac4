"""t-SNE maps of the embeddings and how well they separate good from anomalous."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from metricad.data.manifest import synthetic_rows
from metricad.params import TsneParams

MIN_POINTS = 2  # a t-SNE map of fewer points is not drawn


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its length (float64; a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def per_image(embeddings: np.ndarray) -> np.ndarray:
    """One vector per image (N, D) from its views' embeddings (N, V, D): a single view's
    embedding itself, or the mean of the views' unit embeddings."""
    count, views, dim = embeddings.shape
    if views == 1:
        return embeddings[:, 0]
    return unit_rows(embeddings.reshape(count * views, dim)).reshape(count, views, dim).mean(axis=1)


def usable_perplexity(perplexity: float, count: int) -> float | None:
    """The perplexity a map of `count` points can use: t-SNE needs it below the number of
    points, so a larger one is lowered to count - 1; None below MIN_POINTS (no map)."""
    if count < MIN_POINTS:
        return None
    return min(perplexity, float(count - 1))


def tsne_map(embeddings: np.ndarray, perplexity: float, seed: int, max_iter: int) -> np.ndarray:
    """2-D t-SNE coordinates; PCA init and a fixed seed make it repeatable.

    `perplexity` must be below the number of points (see `usable_perplexity`).
    """
    # The exact method is deterministic and fast enough for MVTec-sized sets.
    method = "exact" if len(embeddings) <= 2000 else "barnes_hut"
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        max_iter=max_iter,
        init="pca",
        random_state=seed,
        method=method,
    )
    return tsne.fit_transform(embeddings.astype(np.float64)).astype(np.float32)


def silhouette(points: np.ndarray, labels: np.ndarray, metric: str = "euclidean") -> float | None:
    """Silhouette score of good vs anomalous (1 = apart, 0 = mixed, < 0 = swapped).

    None where it is undefined (one class only, or fewer than three points).
    """
    if len(np.unique(labels)) < 2 or len(points) <= 2:
        return None
    return round(float(silhouette_score(points, labels, metric=metric)), 6)


def nearest_is_synthetic(
    test: np.ndarray, labels: np.ndarray, good: np.ndarray, synthetic: np.ndarray
) -> dict[str, float | int | None]:
    """Do the synthetic anomalies stand in for the real ones? For each test image, whether its
    nearest neighbour (cosine) among the good training images and the synthetic sample is a
    synthetic anomaly: the share of real defects for which it is (high is good), and of good
    test images (low is good). None where a group or the synthetic sample is empty."""
    labels = np.asarray(labels)
    result: dict[str, float | int | None] = {
        "n_samples": int(len(synthetic)),
        "defects_nearest_synthetic": None,
        "good_nearest_synthetic": None,
    }
    if len(synthetic) and len(good) and len(test):
        queries = unit_rows(test)
        closest_synthetic = (queries @ unit_rows(synthetic).T).max(axis=1)
        nearer = closest_synthetic > (queries @ unit_rows(good).T).max(axis=1)
        for key, group in (("defects_nearest_synthetic", 1), ("good_nearest_synthetic", 0)):
            chosen = labels == group
            result[key] = round(float(nearer[chosen].mean()), 6) if chosen.any() else None
    return result


# The article's three maps: name -> (splits drawn, title).
MAPS = {
    "train": (("train",), "train data"),
    "test": (("test",), "test data"),
    "all": (("train", "test"), "train + test data (one fit)"),
}


@dataclass
class TsneMap:
    """One map: its rows (label, defect, split; the real images first, then the synthetic
    sample), their embeddings, 2-D points (NaN when too few to draw) and the real count."""

    name: str
    title: str
    rows: pd.DataFrame
    vectors: np.ndarray
    points: np.ndarray
    real: int
    perplexity: float | None

    def table(self) -> pd.DataFrame:
        """plots/tsne/<name>.csv, what `dvc plots show` draws."""
        labels = self.rows["label"].to_numpy()
        return pd.DataFrame(
            {
                "x": self.points[:, 0].round(4),
                "y": self.points[:, 1].round(4),
                "class": np.where(labels == 1, "anomalous", "good"),
                "defect": self.rows["defect"].to_numpy(),
                "split": self.rows["split"].to_numpy(),
            }
        )

    def separation(self) -> dict[str, float | None]:
        """Silhouette of the real images only (the synthetic sample would flatter it), in the
        map and in the embedding space."""
        labels = self.rows["label"].to_numpy()[: self.real]
        return {
            "tsne_2d": silhouette(self.points[: self.real], labels),
            "embedding": silhouette(self.vectors[: self.real], labels, metric="cosine"),
        }


def tsne_maps(
    predictions: pd.DataFrame,
    embeddings: np.ndarray,
    synthetic: np.ndarray,
    settings: TsneParams,
) -> tuple[list[TsneMap], list[str]]:
    """The three maps; the train and train+test ones also hold the synthetic sample. A
    perplexity the map cannot use is lowered, a map of fewer than two images is not drawn:
    each says so in a warning."""
    sample = synthetic_rows(len(synthetic), split="train")[["label", "defect", "split"]]
    maps, warnings = [], []
    for name, (splits, title) in MAPS.items():
        chosen = predictions["split"].isin(splits).to_numpy()
        rows, vectors = predictions[chosen], embeddings[chosen]
        real = len(rows)
        if name != "test":
            rows = pd.concat([rows, sample], ignore_index=True)
            vectors = np.concatenate([vectors, synthetic])
        perplexity = usable_perplexity(settings.perplexity, len(vectors))
        if perplexity is None:
            warnings.append(f"tsne: the {name} map has {len(vectors)} image(s); no map drawn")
            points = np.full((len(vectors), 2), np.nan, dtype=np.float32)
        else:
            if perplexity != settings.perplexity:
                warnings.append(
                    f"tsne.perplexity={settings.perplexity} is not below the number of images "
                    f"in the {name} map ({len(vectors)}); used {perplexity}"
                )
            points = tsne_map(vectors, perplexity, settings.seed, settings.max_iter)
        maps.append(TsneMap(name, title, rows, vectors, points, real, perplexity))
    return maps, warnings
