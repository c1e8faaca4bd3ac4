"""`map`: the segmentation head's image score, the maximum of its smoothed anomaly map
(model.segmentation; model/segmentation.py). NaN for a network without that head."""

from __future__ import annotations

from metricad.scoring import SCORES
from metricad.scoring.base import NetworkScore


@SCORES.register("map", needs="segmentation")
class MapScore(NetworkScore):
    source = "map"
