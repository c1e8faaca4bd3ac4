"""What every score is: a torch module over unit-length float64 embeddings (higher = more
anomalous), fitted once on the good training embeddings. As in scikit-learn, settings go to
the constructor (a score registered with a settings dataclass gets its `score.<name>`
subsection there) and data to `fit`."""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn


class Score(nn.Module, abc.ABC):
    """One anomaly score. Tensor state lives in buffers; other state (a k, a flag) in
    `get_extra_state`, so that the whole head is saved and loaded as one state dict."""

    def fit(self, good: torch.Tensor) -> list[str]:
        """Fit on the good training embeddings (unit rows, float64); return warnings about
        settings the data changed. A score without state keeps this default."""
        return []

    @abc.abstractmethod
    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, map_score: torch.Tensor
    ) -> torch.Tensor:
        """One float64 score per row of `unit` (N, D); `prob_anomalous` is the metric head's
        (N,), `map_score` the segmentation head's (N,; NaN for a network without one)."""

    def used(self) -> dict[str, float | int]:
        """The settings the data allowed, for metrics/evaluate.json `score_settings`."""
        return {}

    def get_extra_state(self) -> dict[str, Any]:
        return {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        return None
