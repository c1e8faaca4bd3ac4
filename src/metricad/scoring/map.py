"""`map`: the segmentation head's image score, the maximum of its smoothed anomaly map
(model.segmentation; model/segmentation.py). NaN for a network without that head."""

from __future__ import annotations

import torch

from metricad.scoring import SCORES
from metricad.scoring.base import Score


@SCORES.register("map", needs_segmentation=True)
class MapScore(Score):
    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, map_score: torch.Tensor
    ) -> torch.Tensor:
        return map_score.to(torch.float64)
