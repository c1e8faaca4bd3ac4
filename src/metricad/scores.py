"""Image anomaly scores from the embedding: distance to the good training images.

The softmax probability is what the head learned; these scores ask the metric-learning
question directly: how far is an image from every good image seen in training?
- `knn`: mean cosine distance to the k nearest good training embeddings;
- `gaussian`: Mahalanobis distance to one Gaussian fitted on the good training embeddings,
  its covariance shrunk (Ledoit-Wolf) because a few dozen images cannot pin down 512
  dimensions (CutPaste's density estimator).
Both work on L2-normalised embeddings: the cosine head only ever sees the direction.
`Scoring` adds each score's operating point; `save_scoring` writes all of it as one file
(models/scorer.npz, read without pickle).
"""

from __future__ import annotations

import json
import typing
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.covariance import LedoitWolf

from metricad.errors import MetricadError
from metricad.files import atomic_path
from metricad.params import ScoreName

SCORER_FORMAT = "metricad-scorer/1"

SCORES = typing.get_args(ScoreName)
EMBEDDING_SCORES = tuple(name for name in SCORES if name != "softmax")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its length (float64; a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def knn_distance(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine distance of each query to its k nearest reference rows (brute force: one
    matrix product, a sort; no thread-dependent search structure)."""
    distances = 1.0 - unit_rows(queries) @ unit_rows(reference).T
    return np.sort(distances, axis=1, kind="stable")[:, :k].mean(axis=1)


def gaussian_fit(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, precision and shrinkage of a Ledoit-Wolf Gaussian of the reference rows
    (shrinkage 0: the sample covariance, 1: a scaled identity)."""
    estimator = LedoitWolf().fit(np.asarray(reference, np.float64))
    return estimator.location_, estimator.precision_, float(estimator.shrinkage_)


def mahalanobis(location: np.ndarray, precision: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return cdist(np.asarray(queries, np.float64), location[None, :], "mahalanobis", VI=precision)[
        :, 0
    ]


def gaussian_distance(reference: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Mahalanobis distance of each query to a Ledoit-Wolf Gaussian of the reference rows,
    and the shrinkage used."""
    location, precision, shrinkage = gaussian_fit(reference)
    return mahalanobis(location, precision, queries), shrinkage


@dataclass(frozen=True)
class Scorer:
    """What the embedding scores need from the good training images, fitted once: the kNN
    bank (their unit-length embeddings) and the Gaussian (None below two images)."""

    bank: np.ndarray
    k: int
    location: np.ndarray | None = None
    precision: np.ndarray | None = None
    shrinkage: float | None = None

    def used(self, names: Sequence[str]) -> dict[str, float | int]:
        """The settings the data allowed for the scores `names`, for metrics/."""
        used: dict[str, float | int] = {"knn_k": self.k} if "knn" in names else {}
        if self.shrinkage is not None:
            used["gaussian_shrinkage"] = round(self.shrinkage, 6)
        return used

    def scores(
        self, names: Sequence[str], embeddings: np.ndarray, prob_anomalous: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Every score in `names` for each row (higher = more anomalous); a Gaussian without
        a fit is NaN throughout."""
        vectors = unit_rows(embeddings)
        result = {}
        for name in names:
            if name == "softmax":
                result[name] = np.asarray(prob_anomalous, dtype=np.float64)
            elif name == "knn":
                result[name] = knn_distance(self.bank, vectors, self.k)
            elif name == "gaussian" and self.location is None:
                result[name] = np.full(len(vectors), np.nan)
            elif name == "gaussian":
                result[name] = mahalanobis(self.location, self.precision, vectors)
            else:
                raise ValueError(f"unknown score {name!r}")
        return result


def fit_scorer(good: np.ndarray, k: int, names: Sequence[str] = SCORES) -> tuple[Scorer, list[str]]:
    """The scorer of the good training embeddings `good` for the scores `names`, and a
    warning for each setting the data changed: a k above their number is lowered to it; a
    covariance from no more images than dimensions is shrunk; a Gaussian of one image is not
    fitted."""
    if len(good) == 0:
        raise ValueError("the embedding scores need at least one good training image")
    bank, warnings = unit_rows(good), []
    count, dims = bank.shape
    used_k = min(k, count)
    if used_k < k and "knn" in names:
        warnings.append(
            f"evaluate.knn_k={k} is above the number of good training images ({count}); "
            f"used k={used_k}"
        )
    if "gaussian" not in names:
        return Scorer(bank, used_k), warnings
    if count < 2:
        warnings.append(
            f"evaluate: the Gaussian score needs at least 2 good training images, the "
            f"training split has {count}; its AUROC is undefined (null)"
        )
        return Scorer(bank, used_k), warnings
    location, precision, shrinkage = gaussian_fit(bank)
    if count <= dims:
        warnings.append(
            f"evaluate: the Gaussian score fits {dims} dimensions on {count} good training "
            f"images; its covariance is shrunk towards a scaled identity (Ledoit-Wolf "
            f"shrinkage {shrinkage:.3f})"
        )
    return Scorer(bank, used_k, location, precision, shrinkage), warnings


@dataclass(frozen=True)
class OperatingPoint:
    """Where one score is cut: anomalous above `threshold`. The normalised score (anomalib's
    convention) is 0.5 at the threshold and moves by 1 per `span` (the spread of the good
    validation scores), clipped to [0, 1]."""

    threshold: float
    span: float

    def anomalous(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values) > self.threshold

    def normalized(self, values: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(values) - self.threshold) / self.span + 0.5, 0.0, 1.0)


def operating_point(good: np.ndarray, method: str, quantile: float, k_sd: float) -> OperatingPoint:
    """The operating point set on the scores of good images only (never on defects, so a
    validation set without a defect cannot end in "everything is anomalous"): their
    `quantile` quantile, or their mean + `k_sd` standard deviations. NaN scores (a Gaussian
    that could not be fitted) give a NaN threshold: nothing is flagged by it."""
    values = np.asarray(good, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return OperatingPoint(float("nan"), 1.0)
    if method == "quantile":
        threshold = float(np.quantile(values, quantile))
    else:
        spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        threshold = float(np.mean(values)) + k_sd * spread
    span = float(values.max() - values.min())
    # One image (or equal scores) has no spread: scale by the threshold's own size instead.
    return OperatingPoint(threshold, span if span > 0 else max(abs(threshold), 1e-12))


@dataclass(frozen=True)
class Scoring:
    """Everything that turns an embedding (and the head's probability) into scores,
    normalised scores and a verdict: the scorer of the good training images, the operating
    point of each score, and which score decides the verdict. The `score` stage writes it
    once (models/scorer.npz); evaluate and predict read it."""

    scorer: Scorer
    names: tuple[str, ...]
    points: dict[str, OperatingPoint]
    verdict: str

    def scores(self, embeddings: np.ndarray, prob_anomalous: np.ndarray) -> dict[str, np.ndarray]:
        return self.scorer.scores(self.names, embeddings, prob_anomalous)


@dataclass
class ScoreReport:
    """Per-image scores by name, the settings actually used, and warnings for the user."""

    scores: dict[str, np.ndarray]
    used: dict[str, float | int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def anomaly_scores(
    names: Sequence[str],
    embeddings: np.ndarray,
    prob_anomalous: np.ndarray,
    reference: np.ndarray,
    k: int,
) -> ScoreReport:
    """Every score in `names` for each row of `embeddings`, measured against the good
    training rows `reference` selects (fit_scorer, then Scorer.scores)."""
    if not any(name in EMBEDDING_SCORES for name in names):
        return ScoreReport({"softmax": np.asarray(prob_anomalous, dtype=np.float64)})
    good = np.asarray(embeddings)[np.asarray(reference, bool)]
    scorer, warnings = fit_scorer(good, k, names)
    scores = scorer.scores(names, embeddings, prob_anomalous)
    return ScoreReport(scores, scorer.used(names), warnings)


def save_scoring(path: str | Path, scoring: Scoring, extra: dict[str, Any]) -> None:
    """models/scorer.npz: the scorer's arrays, and the rest (operating points, names, `extra`
    such as the CAM settings) as one JSON record."""
    scorer = scoring.scorer
    record = {
        "format": SCORER_FORMAT,
        "names": list(scoring.names),
        "k": scorer.k,
        "shrinkage": scorer.shrinkage,
        "points": {name: [p.threshold, p.span] for name, p in scoring.points.items()},
        "verdict": scoring.verdict,
        **extra,
    }
    arrays = {"bank": scorer.bank}
    if scorer.location is not None:
        arrays |= {"location": scorer.location, "precision": scorer.precision}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, record=np.array(json.dumps(record, sort_keys=True)), **arrays)


def load_scoring(path: str | Path) -> tuple[Scoring, dict[str, Any]]:
    """The scoring and its JSON record; one-line errors for a missing, broken or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise MetricadError(f"{path}: scorer not found (run `dvc repro score`)")
    try:
        with np.load(path) as stored:  # numpy refuses pickled objects by default
            arrays = {name: stored[name] for name in stored.files}
        record = json.loads(str(arrays.pop("record")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MetricadError(f"{path}: not a readable scorer ({reason})") from None
    if not isinstance(record, dict) or record.get("format") != SCORER_FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise MetricadError(
            f"{path}: written by another metricad version (format {found!r}, this version "
            f"reads {SCORER_FORMAT!r}); run `dvc repro score`"
        )
    scorer = Scorer(
        arrays["bank"],
        record["k"],
        arrays.get("location"),
        arrays.get("precision"),
        record["shrinkage"],
    )
    points = {name: OperatingPoint(*values) for name, values in record["points"].items()}
    return Scoring(scorer, tuple(record["names"]), points, record["verdict"]), record
