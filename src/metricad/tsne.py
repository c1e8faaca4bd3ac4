"""t-SNE maps of the embeddings and how well they separate good from anomalous."""

from __future__ import annotations

import numpy as np
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from metricad.scores import unit_rows

MIN_POINTS = 2  # a t-SNE map of fewer points is not drawn


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
