"""t-SNE maps of the embeddings and how well they separate good from anomalous."""

from __future__ import annotations

import numpy as np
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from metricad.errors import MetricadError


def tsne_map(
    embeddings: np.ndarray, perplexity: float, seed: int, max_iter: int, name: str = "map"
) -> np.ndarray:
    """2-D t-SNE coordinates; PCA init and a fixed seed make it repeatable."""
    if len(embeddings) <= perplexity:
        raise MetricadError(
            f"params: tsne.perplexity={perplexity} must be below the number of images in the "
            f"{name} map ({len(embeddings)})"
        )
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
