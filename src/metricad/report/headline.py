"""The run's headline figures: what `dvc metrics show` and `dvc metrics diff` print.

One small file per image score (metrics/scores/<score>.json) and per heat-map method
(metrics/maps/<method>.json) with the same few keys each, so DVC's table has a row per score or
method and a handful of columns. Every figure, per defect and per kind, stays in the stages'
detailed files (metrics/evaluate.json, gradcam.json, ...), which `compare` and the docs read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A heat map's headline, from its detailed test summary (analysis/localization.py), in order.
MAP_FIGURES = ("pointing_game", "pixel_auroc", "aupro")


def score_headline(auroc: Mapping[str, Any], operating_point: Mapping[str, Any]) -> dict:
    """An image score's test AUROC and how its threshold does on the test images."""
    return {
        "auroc": auroc["auroc"],
        "fpr": operating_point["false_positive_rate"],
        "recall": operating_point["recall"],
    }


def map_headline(measured: Mapping[str, Any]) -> dict:
    """A heat map's localisation on the test defects with masks; {} where none has a mask."""
    test = measured.get("test") or {}
    return {name: test[name] for name in MAP_FIGURES if name in test}
