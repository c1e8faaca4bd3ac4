"""`patch`: the patch memory's image score, the largest distance over an image's positions to
the nearest good training vector there (model.patch_memory; model/patch_memory.py). The bank
is fitted with the network (the train stage), so this score only passes it on."""

from __future__ import annotations

from metricad.scoring import SCORES
from metricad.scoring.base import NetworkScore


@SCORES.register("patch", needs="patch_memory")
class PatchScore(NetworkScore):
    source = "patch"
