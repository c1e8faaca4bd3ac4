"""`map`: the segmentation head's image score, the maximum of its smoothed anomaly map
(model.segmentation; model/segmentation.py). NaN for a network without that head."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from metricad.scoring import SCORES
from metricad.scoring.base import Score


@SCORES.register("map", needs="segmentation")
class MapScore(Score):
    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, network: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        return network["map"].to(torch.float64)
