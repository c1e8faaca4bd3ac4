"""`softmax`: the head's own probability of the anomalous class, as a score."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from metricad.scoring import SCORES
from metricad.scoring.base import Score


@SCORES.register("softmax")
class SoftmaxScore(Score):
    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, network: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        return prob_anomalous.to(torch.float64)
