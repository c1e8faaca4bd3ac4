"""ScoringHead: the chosen scores and each one's operating point as one torch module, so
evaluate, predict and the ONNX export run the same code. Saved as models/scorer.npz (its
buffers as arrays, the rest as one JSON record; read without pickle)."""

from __future__ import annotations

import json
import typing
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metricad.errors import MetricadError
from metricad.files import atomic_path
from metricad.params import EvaluateParams, ScoreName
from metricad.scoring import SCORES

SCORER_FORMAT = "metricad-scorer/2"
SCORE_NAMES = typing.get_args(ScoreName)  # in the schema's order: softmax, knn, gaussian
_EXTRA = "._extra_state"


def unit_embeddings(embeddings: torch.Tensor) -> torch.Tensor:
    """Float64 rows of length 1 (a zero row stays zero): the cosine head only sees direction."""
    return F.normalize(embeddings.to(torch.float64), dim=1)


def operating_point(
    good: np.ndarray, method: str, quantile: float, k_sd: float
) -> tuple[float, float]:
    """(threshold, span) set on the scores of good images only (never on defects, so a
    validation set without a defect cannot end in "everything is anomalous"): their
    `quantile` quantile, or their mean + `k_sd` standard deviations; the span is their spread.
    NaN scores (a Gaussian that could not be fitted) give a NaN threshold: nothing is flagged."""
    values = np.asarray(good, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), 1.0
    if method == "quantile":
        threshold = float(np.quantile(values, quantile))
    else:
        spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        threshold = float(np.mean(values)) + k_sd * spread
    span = float(values.max() - values.min())
    # One image (or equal scores) has no spread: scale by the threshold's own size instead.
    return threshold, span if span > 0 else max(abs(threshold), 1e-12)


class ScoringHead(nn.Module):
    """Embedding and head probability in; every score, the verdict score normalised (anomalib's
    convention: 0.5 at its threshold, moving by 1 per span, clipped to [0, 1]) and the verdict
    out. Float64 throughout, whatever the network ran in."""

    def __init__(self, names: Sequence[str], verdict: str) -> None:
        super().__init__()
        if verdict not in names:
            raise ValueError(f"verdict score {verdict!r} is not among {list(names)}")
        self.names, self.verdict = tuple(names), verdict
        self.scores = nn.ModuleDict({name: SCORES[name]() for name in self.names})
        self.register_buffer("thresholds", torch.zeros(len(names), dtype=torch.float64))
        self.register_buffer("spans", torch.ones(len(names), dtype=torch.float64))

    def fit_scores(self, good_embeddings: np.ndarray, settings: EvaluateParams) -> list[str]:
        """Fit every score on the good training embeddings; warnings for the user."""
        if len(good_embeddings) == 0:
            raise MetricadError("evaluate: the scores need at least one good training image")
        good = unit_embeddings(torch.as_tensor(good_embeddings))
        return [warning for score in self.scores.values() for warning in score.fit(good, settings)]

    def set_operating_points(self, good_values: torch.Tensor, settings: EvaluateParams) -> None:
        """Each score's threshold and span from its values (N, S) on good validation images."""
        for column, _name in enumerate(self.names):
            threshold, span = operating_point(
                good_values[:, column].numpy(),
                settings.threshold_method,
                settings.threshold_quantile,
                settings.threshold_sd,
            )
            self.thresholds[column], self.spans[column] = threshold, span

    def score_values(self, embedding: torch.Tensor, prob_anomalous: torch.Tensor) -> torch.Tensor:
        """Every score of every row, (N, S) float64, in `names` order."""
        unit = unit_embeddings(embedding)
        return torch.stack([score(unit, prob_anomalous) for score in self.scores.values()], 1)

    def forward(
        self, embedding: torch.Tensor, prob_anomalous: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        values = self.score_values(embedding, prob_anomalous)
        column = self.names.index(self.verdict)
        verdict = values[:, column]
        threshold, span = self.thresholds[column], self.spans[column]
        normalized = ((verdict - threshold) / span + 0.5).clamp(0.0, 1.0)
        return values, normalized, verdict > threshold

    def used(self) -> dict[str, float | int]:
        return {key: v for score in self.scores.values() for key, v in score.used().items()}


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
    """Every score in `names` for each row of `embeddings`, fitted on the good training rows
    `reference` selects (for surveys and tests; the pipeline saves the fitted head)."""
    head = ScoringHead(names, names[0])
    warnings = head.fit_scores(
        np.asarray(embeddings)[np.asarray(reference, bool)], EvaluateParams(knn_k=k)
    )
    probabilities = np.zeros(len(embeddings)) if prob_anomalous is None else prob_anomalous
    values = head.score_values(torch.as_tensor(embeddings), torch.as_tensor(probabilities))
    scores = {name: values[:, i].numpy() for i, name in enumerate(names)}
    return ScoreReport(scores, head.used(), warnings)


def save_scoring(path: str | Path, head: ScoringHead) -> None:
    """models/scorer.npz: the head's buffers as arrays, names and extra state as JSON."""
    state = head.state_dict()
    record = {
        "format": SCORER_FORMAT,
        "names": list(head.names),
        "verdict": head.verdict,
        "extra": {k.removesuffix(_EXTRA): v for k, v in state.items() if k.endswith(_EXTRA)},
    }
    arrays = {k: v.numpy() for k, v in state.items() if not k.endswith(_EXTRA)}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, record=np.array(json.dumps(record, sort_keys=True)), **arrays)


def load_scoring(path: str | Path) -> ScoringHead:
    """The saved head, in eval mode; one-line errors for a missing, broken or foreign file."""
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
    head = ScoringHead(record["names"], record["verdict"])
    for key, array in arrays.items():
        owner, _, name = key.rpartition(".")
        setattr(head.get_submodule(owner) if owner else head, name, torch.from_numpy(array))
    for owner, extra in record["extra"].items():
        head.get_submodule(owner).set_extra_state(extra)
    return head.eval()
