"""ScoringHead: the chosen scores and each one's operating point as one torch module, so
evaluate, predict and the ONNX export run the same code (saved by scorer_file.py)."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from metricad.data.split import validation_rows
from metricad.errors import MetricadError
from metricad.params import ScoreName, ScoreParams
from metricad.scoring import SCORES
from metricad.scoring.base import NETWORK_SCORES

SCORE_NAMES = typing.get_args(ScoreName)  # in the schema's order: softmax, knn, ..., patch


def unit_embeddings(embeddings: torch.Tensor) -> torch.Tensor:
    """Float64 rows of length 1 (a zero row stays zero): the cosine head only sees direction."""
    return F.normalize(embeddings.to(torch.float64), dim=1)


def network_columns(predictions: pd.DataFrame, rows: np.ndarray | slice) -> dict[str, torch.Tensor]:
    """The network's own scores at `rows` by name, from the embed stage's `<name>_score`
    columns (those the network has)."""
    return {
        name: torch.tensor(predictions[f"{name}_score"].to_numpy(dtype=np.float64)[rows])
        for name in NETWORK_SCORES
        if f"{name}_score" in predictions
    }


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

    def __init__(
        self, names: Sequence[str], verdict: str, own_settings: Mapping[str, object] | None = None
    ) -> None:
        """`own_settings`: a score's own settings by its name (score.<score>; a score not
        in it gets its defaults, as when a saved head is loaded with its state)."""
        super().__init__()
        if verdict not in names:
            raise ValueError(f"verdict score {verdict!r} is not among {list(names)}")
        self.names, self.verdict = tuple(names), verdict
        own_settings = own_settings or {}
        self.scores = nn.ModuleDict(
            {name: SCORES.create(name, settings=own_settings.get(name)) for name in self.names}
        )
        self.register_buffer("thresholds", torch.zeros(len(names), dtype=torch.float64))
        self.register_buffer("spans", torch.ones(len(names), dtype=torch.float64))

    def fit_scores(self, good_embeddings: np.ndarray) -> list[str]:
        """Fit every score on the good training embeddings, (N, D), or (N, V, D) with views:
        then on every view; warnings for the user."""
        if len(good_embeddings) == 0:
            raise MetricadError("evaluate: the scores need at least one good training image")
        good = unit_embeddings(torch.as_tensor(good_embeddings).flatten(0, -2))
        return [warning for score in self.scores.values() for warning in score.fit(good)]

    def set_operating_points(self, good_values: torch.Tensor, settings: ScoreParams) -> None:
        """Each score's threshold and span from its values (N, S) on good validation images."""
        for column, _name in enumerate(self.names):
            threshold, span = operating_point(
                good_values[:, column].numpy(),
                settings.threshold_method,
                settings.threshold_quantile,
                settings.threshold_sd,
            )
            self.thresholds[column], self.spans[column] = threshold, span

    def score_values(
        self,
        embedding: torch.Tensor,
        prob_anomalous: torch.Tensor,
        network: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Every score of every image, (N, S) float64, in `names` order, from its embeddings
        (N, V, D): each view scored, and an image's score the mean of its views'.
        `network`: the network's own image scores by name (N,) (NETWORK_SCORES; one the
        network lacks is NaN)."""
        network = network or {}
        missing = torch.full(prob_anomalous.shape, float("nan"), dtype=torch.float64)
        views = embedding.shape[1]
        unit = unit_embeddings(embedding.flatten(0, 1))
        prob_anomalous = prob_anomalous.repeat_interleave(views)
        own = {name: network.get(name, missing).repeat_interleave(views) for name in NETWORK_SCORES}
        flat = torch.stack([score(unit, prob_anomalous, own) for score in self.scores.values()], 1)
        return flat.unflatten(0, (-1, views)).mean(dim=1)

    def forward(
        self,
        embedding: torch.Tensor,
        prob_anomalous: torch.Tensor,
        network: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        values = self.score_values(embedding, prob_anomalous, network)
        column = self.names.index(self.verdict)
        verdict = values[:, column]
        threshold, span = self.thresholds[column], self.spans[column]
        normalized = ((verdict - threshold) / span + 0.5).clamp(0.0, 1.0)
        return values, normalized, verdict > threshold

    def used(self) -> dict[str, float | int]:
        return {key: v for score in self.scores.values() for key, v in score.used().items()}


def fitted_head(
    names: Sequence[str],
    verdict: str,
    embeddings: np.ndarray,
    prob_anomalous: np.ndarray,
    network: Mapping[str, torch.Tensor],
    split: np.ndarray,
    labels: np.ndarray,
    settings: ScoreParams,
) -> tuple[ScoringHead, list[str]]:
    """The pipeline's scoring head for images with embeddings (N, V, D) and their split and
    labels: every score fitted on the good training images, each one's operating point set on
    the good validation images (validation_rows); warnings for the user. The score stage saves
    it; the surveys and screens score through it too."""
    own_settings = {name: SCORES.settings_in(name, settings) for name in names}
    head = ScoringHead(names, verdict, own_settings)
    warnings = head.fit_scores(embeddings[(split == "train") & (labels == 0)])
    validation, fallback = validation_rows(split, labels)
    values = head.score_values(
        torch.from_numpy(embeddings[validation]),
        torch.as_tensor(np.asarray(prob_anomalous, dtype=np.float64)[validation]),
        {name: column[torch.from_numpy(validation)] for name, column in network.items()},
    )
    head.set_operating_points(values, settings)
    return head, warnings + fallback
