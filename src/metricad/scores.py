"""Image anomaly scores from the embedding: distance to the good training images.

The softmax probability is what the head learned; these scores ask the metric-learning
question directly: how far is an image from every good image seen in training?
- `knn`: mean cosine distance to the k nearest good training embeddings;
- `gaussian`: Mahalanobis distance to one Gaussian fitted on the good training embeddings,
  its covariance shrunk (Ledoit-Wolf) because a few dozen images cannot pin down 512
  dimensions (CutPaste's density estimator).
Both work on L2-normalised embeddings: the cosine head only ever sees the direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

EMBEDDING_SCORES = ("knn", "gaussian")
SCORES = ("softmax", *EMBEDDING_SCORES)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its length (float64; a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def knn_distance(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine distance of each query to its k nearest reference rows."""
    neighbours = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute")
    distances, _ = neighbours.fit(np.asarray(reference, np.float64)).kneighbors(
        np.asarray(queries, np.float64)
    )
    return distances.mean(axis=1)


def gaussian_distance(reference: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Mahalanobis distance of each query to a Ledoit-Wolf Gaussian of the reference rows,
    and the shrinkage used (0: the sample covariance, 1: a scaled identity)."""
    estimator = LedoitWolf().fit(np.asarray(reference, np.float64))
    distances = np.sqrt(np.maximum(estimator.mahalanobis(np.asarray(queries, np.float64)), 0.0))
    return distances, float(estimator.shrinkage_)


@dataclass
class ScoreReport:
    """Per-image scores by name, the settings actually used, and warnings for the user."""

    scores: dict[str, np.ndarray]
    used: dict[str, float | int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def anomaly_scores(
    names: tuple[str, ...] | list[str],
    embeddings: np.ndarray,
    prob_anomalous: np.ndarray,
    reference: np.ndarray,
    k: int,
) -> ScoreReport:
    """Every score in `names` for each row of `embeddings` (higher = more anomalous).

    `reference` selects the good training images the embedding scores measure against.
    A k above their number is lowered to it; a covariance from fewer images than
    dimensions is shrunk; both say so in `warnings`. A score that cannot be computed (a
    Gaussian of one image) is NaN throughout.
    """
    reference = np.asarray(reference, dtype=bool)
    report = ScoreReport({})
    count = int(reference.sum())
    if any(name in EMBEDDING_SCORES for name in names) and count == 0:
        raise ValueError("the embedding scores need at least one good training image")
    vectors = unit_rows(embeddings)
    good = vectors[reference]
    for name in names:
        if name == "softmax":
            report.scores[name] = np.asarray(prob_anomalous, dtype=np.float64)
        elif name == "knn":
            used_k = min(k, count)
            if used_k < k:
                report.warnings.append(
                    f"evaluate.knn_k={k} is above the number of good training images "
                    f"({count}); used k={used_k}"
                )
            report.scores[name] = knn_distance(good, vectors, used_k)
            report.used["knn_k"] = used_k
        elif name == "gaussian" and count < 2:
            report.warnings.append(
                f"evaluate: the Gaussian score needs at least 2 good training images, the "
                f"training split has {count}; its AUROC is undefined (null)"
            )
            report.scores[name] = np.full(len(vectors), np.nan)
        elif name == "gaussian":
            report.scores[name], shrinkage = gaussian_distance(good, vectors)
            if count <= vectors.shape[1]:
                report.warnings.append(
                    f"evaluate: the Gaussian score fits {vectors.shape[1]} dimensions on "
                    f"{count} good training images; its covariance is shrunk towards a "
                    f"scaled identity (Ledoit-Wolf shrinkage {shrinkage:.3f})"
                )
            report.used["gaussian_shrinkage"] = round(shrinkage, 6)
        else:
            raise ValueError(f"unknown score {name!r}")
    return report
