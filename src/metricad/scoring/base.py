"""What every score is: a torch module over unit-length float64 embeddings (higher = more
anomalous), fitted once on the good training embeddings. As in scikit-learn, settings go to
the constructor (a score registered with a settings dataclass gets its `score.<name>`
subsection there) and data to `fit`."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

# The image scores the network computes itself (model/torch_model.py, embed_and_scores), each
# a column `<name>_score` of the embed stage's predictions; NaN for a network without the part.
NETWORK_SCORES = ("map", "patch")


class Score(nn.Module, abc.ABC):
    """One anomaly score. Tensor state lives in buffers; other state (a k, a flag) in
    `get_extra_state`, so that the whole head is saved and loaded as one state dict."""

    def fit(self, good: torch.Tensor) -> list[str]:
        """Fit on the good training embeddings (unit rows, float64); return warnings about
        settings the data changed. A score without state keeps this default."""
        return []

    @abc.abstractmethod
    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, network: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """One float64 score per row of `unit` (N, D); `prob_anomalous` is the metric head's
        (N,), `network` the network's own scores by name (NETWORK_SCORES, each (N,))."""

    def used(self) -> dict[str, float | int]:
        """The settings the data allowed, for metrics/evaluate.json `score_settings`."""
        return {}

    def get_extra_state(self) -> dict[str, Any]:
        return {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        return None


class NetworkScore(Score):
    """A score the network computes itself (`map`, `patch`), passed on as float64: its state
    is the network's, so it fits nothing."""

    source: str  # its name among NETWORK_SCORES

    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, network: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        return network[self.source].to(torch.float64)
