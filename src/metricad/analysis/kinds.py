"""The article's four kinds of heat map (correct, inverted, near miss, no response), judged by
eye there, as a rule; and the IoU threshold chosen on training anomalies.

`peaks` are the raw, un-normalised map maxima, the only place a map's absolute strength
survives its normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metricad.analysis.pixel_metrics import (
    checked_single,
    checked_stacks,
    iou,
    unchecked_hot_spot_distance,
    unchecked_inside_outside_ratio,
)
from metricad.params import GradcamParams

KINDS = ("correct", "inverted", "near_miss", "no_response")
DEFAULT_IOU_THRESHOLD = 0.5  # used only when no real or synthetic train anomaly has a mask
IOU_CANDIDATES = tuple(round(float(t), 2) for t in np.linspace(0.05, 0.95, 19))


def choose_iou_threshold(
    heatmaps: np.ndarray,
    masks: np.ndarray,
    candidates: Sequence[float] = IOU_CANDIDATES,
) -> float:
    """The candidate threshold with the highest mean IoU; ties go to the lowest threshold.

    Meant for TRAIN images only (choosing it on test images would flatter the test IoU).
    Images with an empty mask are ignored: IoU measures how well a defect is outlined.
    """
    heat, mask = checked_stacks(heatmaps, masks)
    defect = mask.any(axis=(1, 2))
    if not defect.any():
        raise ValueError("choose_iou_threshold needs at least one image with a non-empty mask")
    thresholds = np.sort(np.asarray(candidates, dtype=float))
    if thresholds.size == 0:
        raise ValueError("no candidate thresholds given")
    means = [iou(heat[defect], mask[defect], t).mean() for t in thresholds]
    return float(thresholds[int(np.argmax(means))])  # argmax keeps the first (lowest) of ties


def checked_peaks(peaks: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(peaks, dtype=float).ravel()
    if values.shape[0] != n:
        raise ValueError(f"got {values.shape[0]} peaks for {n} heatmaps")
    return values


@dataclass(frozen=True)
class KindRule:
    """The rule that sorts a defect image's heatmap into one of the article's four KINDS,
    applied in order (the first that matches wins):

    1. no_response: `peak <= min_peak` (the raw CAM is essentially zero), or the map is
       flat: the share of pixels with heat >= 0.5 is >= `flat_fraction` (heat everywhere
       is no localisation);
    2. correct: the pointing game hits: the hottest pixel lies within `tolerance_px`
       pixels (Euclidean distance) of the mask;
    3. inverted: the inside/outside ratio (mean heat inside the mask / mean heat outside)
       is below 1: the defect is colder than its surroundings;
    4. near_miss: everything else: the heat sits off the defect, near it or somewhere
       unrelated, but the defect is not colder than the rest (`hot_spot_distance` says
       how far off).
    """

    tolerance_px: int
    min_peak: float
    flat_fraction: float

    def __post_init__(self) -> None:
        if self.tolerance_px < 0:
            raise ValueError(f"tolerance_px must be >= 0, got {self.tolerance_px}")
        if not 0 < self.flat_fraction <= 1:
            raise ValueError(f"flat_fraction must be in (0, 1], got {self.flat_fraction}")

    @classmethod
    def from_params(cls, settings: GradcamParams) -> KindRule:
        return cls(settings.tolerance_px, settings.min_peak, settings.flat_fraction)

    def kind(self, heat: np.ndarray, mask: np.ndarray, peak: float) -> str:
        if not mask.any():
            raise ValueError("heatmap kinds are defined for defect images only (the mask is empty)")
        if peak <= self.min_peak or np.mean(heat >= 0.5) >= self.flat_fraction:
            return "no_response"
        if unchecked_hot_spot_distance(heat, mask) <= self.tolerance_px:
            return "correct"
        if unchecked_inside_outside_ratio(heat, mask) < 1:
            return "inverted"
        return "near_miss"


def classify_kind(heatmap: np.ndarray, mask: np.ndarray, peak: float, rule: KindRule) -> str:
    """One defect image's kind (KindRule); the mask must be non-empty: good images have no
    defect to localise."""
    heat, region = checked_single(heatmap, mask)
    return rule.kind(heat, region, float(peak))


def classify_kinds(
    heatmaps: np.ndarray, masks: np.ndarray, peaks: np.ndarray, rule: KindRule
) -> list[str]:
    """`classify_kind` for each image of a batch of defect images (every mask non-empty)."""
    heat, mask = checked_stacks(heatmaps, masks)
    peak_values = checked_peaks(peaks, heat.shape[0])
    return [rule.kind(h, m, p) for h, m, p in zip(heat, mask, peak_values, strict=True)]
