"""GradCAM heatmaps measured against the MVTec AD ground-truth masks.

Inputs: `heatmaps` are float arrays in [0, 1], each normalised by its own maximum (all zero
when the CAM was zero everywhere); `masks` are boolean arrays of the same shape (non-zero =
defect); a batch is (N, H, W), a single image (H, W). `peaks` are the raw, un-normalised CAM
maxima, the only place the map's absolute strength survives normalisation.

The article's author sorted heatmaps into four kinds by eye; `classify_kind` turns that into
a rule, and the rest gives the standard numbers: pointing game, inside/outside heat ratio,
pixel AUROC, AUPRO (Bergmann et al.) and IoU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from metricad.analysis.metrics import json_float
from metricad.data.manifest import SYNTHETIC
from metricad.params import GradcamParams

KINDS = ("correct", "inverted", "near_miss", "no_response")
DEFAULT_IOU_THRESHOLD = 0.5  # used only when no real or synthetic train anomaly has a mask
IOU_CANDIDATES = tuple(round(float(t), 2) for t in np.linspace(0.05, 0.95, 19))
# Ground-truth regions are 8-connected: pixels touching at a corner belong to one defect.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _stacks(heatmaps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated (N, H, W) heat and bool mask stacks; a single (H, W) image becomes N = 1."""
    heat = np.asarray(heatmaps)
    if not np.issubdtype(heat.dtype, np.floating):
        heat = heat.astype(float)
    # Kept in the caller's float dtype: AUPRO sorts every pixel, float32 halves its memory.
    mask = np.asarray(masks, dtype=bool)
    if heat.ndim == 2 and mask.ndim == 2:
        heat, mask = heat[None], mask[None]
    if heat.ndim != 3 or heat.shape != mask.shape:
        raise ValueError(f"heatmaps {heat.shape} and masks {mask.shape} must be equal (N, H, W)")
    if not np.isfinite(heat).all():
        raise ValueError("heatmaps contain NaN or infinite values")
    return heat, mask


def _single(heatmap: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heat, region = _stacks(heatmap, mask)
    if heat.shape[0] != 1:
        raise ValueError(f"expected one (H, W) image, got {heat.shape[0]}")
    return heat[0], region[0]


def _hot_spot_distance(heat: np.ndarray, mask: np.ndarray) -> float:
    if heat.max() <= 0 or not mask.any():
        return float("nan")
    # np.argmax on the flattened map: ties go to the first pixel in row-major order.
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    rows, cols = np.nonzero(mask)
    return float(np.sqrt(np.min((rows - row) ** 2 + (cols - col) ** 2)))


def hot_spot_distance(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Euclidean distance in pixels from the hottest pixel to the nearest mask pixel (0 inside).

    The hottest pixel is the argmax; ties go to the first one in row-major order. NaN when
    the heatmap is all zero (there is no hot spot) or the mask is empty.
    """
    return _hot_spot_distance(*_single(heatmap, mask))


def pointing_hits(heatmaps: np.ndarray, masks: np.ndarray, tolerance_px: int) -> np.ndarray:
    """Per image: does the hottest pixel lie within `tolerance_px` of the mask (pointing game)?

    "Within" means Euclidean distance <= tolerance_px, i.e. inside the mask dilated by a
    disk of that radius ({(dy, dx): dy² + dx² <= tolerance_px²}); it is computed as
    `hot_spot_distance(...) <= tolerance_px`, which is the same test without building the
    dilation. Ties for the hottest pixel go to the first in row-major order. An all-zero
    heatmap, or an empty mask, is a miss.
    """
    if tolerance_px < 0:
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    heat, mask = _stacks(heatmaps, masks)
    distances = np.array([_hot_spot_distance(h, m) for h, m in zip(heat, mask, strict=True)])
    return distances <= tolerance_px  # NaN compares False: no hot spot or no defect = miss


def _inside_outside_ratio(heat: np.ndarray, mask: np.ndarray) -> float:
    if mask.all() or not mask.any():
        return float("nan")
    inside, outside = float(heat[mask].mean()), float(heat[~mask].mean())
    if outside > 0:
        return inside / outside
    return float("inf") if inside > 0 else float("nan")


def inside_outside_ratio(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Mean heat inside the mask / mean heat outside it; below 1 the defect is "inverted".

    inf when there is heat inside but none outside (perfectly confined); NaN when the map is
    zero everywhere, and when the mask is empty or covers the whole image (one side has no
    pixels to average).
    """
    return _inside_outside_ratio(*_single(heatmap, mask))


def pixel_auroc(heatmaps: np.ndarray, masks: np.ndarray) -> float | None:
    """ROC AUC of heat against mask over all pixels of all images; None if one class only."""
    heat, mask = _stacks(heatmaps, masks)
    if mask.all() or not mask.any():
        return None
    return float(roc_auc_score(mask.ravel(), heat.ravel()))


def _pro_curve(heat: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(FPR, PRO) at every distinct heat value, from the highest threshold down, after (0, 0).

    Exact, as in the MVTec AD evaluation code: each defect-free pixel adds 1/n_ok to the FPR
    once the threshold reaches its heat, each pixel of region r adds 1/(|r| * n_regions) to
    the PRO; sorting all pixels by heat and summing gives both curves at every threshold.
    None when there is no region or no defect-free pixel.
    """
    pro_step = np.zeros(heat.shape)
    n_regions = 0
    for step, image_mask in zip(pro_step, mask, strict=True):
        labelled, count = ndimage.label(image_mask, structure=EIGHT_CONNECTED)
        per_label = np.zeros(count + 1)  # label 0 is background: contributes nothing
        per_label[1:] = 1.0 / np.bincount(labelled.ravel(), minlength=count + 1)[1:]
        step[...] = per_label[labelled]
        n_regions += count
    n_ok = int(np.count_nonzero(~mask))
    if n_regions == 0 or n_ok == 0:
        return None
    # Stable: the sums over tied pixels keep one order (a SIMD sort may reorder ties).
    order = np.argsort(heat, axis=None, kind="stable")[::-1]
    sorted_heat = heat.ravel()[order]
    # Thresholding at t keeps every pixel >= t: read the sums at the last pixel of each value.
    last_of_value = np.append(sorted_heat[1:] != sorted_heat[:-1], True)
    fpr = np.cumsum(~mask.ravel()[order])[last_of_value] / n_ok
    pro = np.cumsum(pro_step.ravel()[order])[last_of_value] / n_regions
    return np.concatenate(([0.0], fpr)), np.clip(np.concatenate(([0.0], pro)), 0.0, 1.0)


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under y(x) over [0, x_max], y interpolated at x_max; x non-decreasing."""
    last = int(np.searchsorted(x, x_max, side="right")) - 1  # last point with x <= x_max
    area = float(np.sum((y[1 : last + 1] + y[:last]) / 2 * np.diff(x[: last + 1])))
    if x[last] < x_max:  # the next point lies beyond x_max: add the slice up to x_max
        x0, x1, y0, y1 = (float(v) for v in (x[last], x[last + 1], y[last], y[last + 1]))
        y_at = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += (y0 + y_at) / 2 * (x_max - x0)
    return area


def aupro(heatmaps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float | None:
    """Normalised area under the per-region-overlap curve up to `fpr_limit` (Bergmann et al.).

    For a threshold t: PRO = mean over all connected ground-truth regions (8-connectivity,
    labelled per image, all images pooled) of |region ∩ (map >= t)| / |region|; FPR = share
    of all defect-free pixels (outside every mask, all images) with map >= t. The curve is
    taken exactly at every distinct heat value (so no threshold count to tune, and it is
    deterministic), starts at (0, 0), is integrated with the trapezoid rule from FPR 0 to
    `fpr_limit` (PRO interpolated linearly at exactly fpr_limit) and divided by fpr_limit,
    so a perfect map scores 1.0, an inverted one 0.0 and a random one about fpr_limit / 2.
    None when there is no defect region or no defect-free pixel. Memory: about 50 bytes per
    pixel of all images together (0.4 GB for 30 images of 512x512).
    """
    if not 0 < fpr_limit <= 1:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    curve = _pro_curve(*_stacks(heatmaps, masks))
    if curve is None:
        return None
    fpr, pro = curve
    return _area_up_to(fpr, pro, fpr_limit) / fpr_limit


def iou(heatmaps: np.ndarray, masks: np.ndarray, threshold: float) -> np.ndarray:
    """Per image IoU of (map >= threshold) with the mask; NaN where both are empty."""
    heat, mask = _stacks(heatmaps, masks)
    hot = heat >= threshold
    intersection = np.count_nonzero(hot & mask, axis=(1, 2))
    union = np.count_nonzero(hot | mask, axis=(1, 2))
    return np.divide(intersection, union, out=np.full(len(union), np.nan), where=union > 0)


def choose_iou_threshold(
    heatmaps: np.ndarray,
    masks: np.ndarray,
    candidates: Sequence[float] = IOU_CANDIDATES,
) -> float:
    """The candidate threshold with the highest mean IoU; ties go to the lowest threshold.

    Meant for TRAIN images only (choosing it on test images would flatter the test IoU).
    Images with an empty mask are ignored: IoU measures how well a defect is outlined.
    """
    heat, mask = _stacks(heatmaps, masks)
    defect = mask.any(axis=(1, 2))
    if not defect.any():
        raise ValueError("choose_iou_threshold needs at least one image with a non-empty mask")
    thresholds = np.sort(np.asarray(candidates, dtype=float))
    if thresholds.size == 0:
        raise ValueError("no candidate thresholds given")
    means = [iou(heat[defect], mask[defect], t).mean() for t in thresholds]
    return float(thresholds[int(np.argmax(means))])  # argmax keeps the first (lowest) of ties


def _peaks(peaks: np.ndarray, n: int) -> np.ndarray:
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
        if _hot_spot_distance(heat, mask) <= self.tolerance_px:
            return "correct"
        if _inside_outside_ratio(heat, mask) < 1:
            return "inverted"
        return "near_miss"


def classify_kind(heatmap: np.ndarray, mask: np.ndarray, peak: float, rule: KindRule) -> str:
    """One defect image's kind (KindRule); the mask must be non-empty: good images have no
    defect to localise."""
    heat, region = _single(heatmap, mask)
    return rule.kind(heat, region, float(peak))


def classify_kinds(
    heatmaps: np.ndarray, masks: np.ndarray, peaks: np.ndarray, rule: KindRule
) -> list[str]:
    """`classify_kind` for each image of a batch of defect images (every mask non-empty)."""
    heat, mask = _stacks(heatmaps, masks)
    peak_values = _peaks(peaks, heat.shape[0])
    return [rule.kind(h, m, p) for h, m, p in zip(heat, mask, peak_values, strict=True)]


def _median_or_none(values: Sequence[float]) -> float | None:
    """Median of the non-NaN values (inf counts as "very large"); None if none or infinite."""
    kept = np.asarray(values, dtype=float)
    kept = kept[~np.isnan(kept)]
    return json_float(float(np.median(kept))) if kept.size else None


def localization_summary(
    heatmaps: np.ndarray,
    masks: np.ndarray,
    peaks: np.ndarray,
    rule: KindRule,
    iou_threshold: float,
    fpr_limit: float = 0.3,
) -> dict:
    """All localisation numbers for a set of test images, JSON-ready (None where undefined).

    Pass good and defect images together: pixel AUROC and AUPRO use every pixel (good
    images supply defect-free pixels); the per-image numbers (pointing game, median
    inside/outside ratio, mean IoU, kinds, median hot-spot distance of near misses) use
    the images with a non-empty mask only, since a good image has no defect to point at.
    """
    heat, mask = _stacks(heatmaps, masks)
    defect = mask.any(axis=(1, 2))
    peak_values = _peaks(peaks, heat.shape[0])
    d_heat, d_mask = heat[defect], mask[defect]
    n_defect = int(defect.sum())

    kinds = classify_kinds(d_heat, d_mask, peak_values[defect], rule)
    distances = np.array([_hot_spot_distance(h, m) for h, m in zip(d_heat, d_mask, strict=True)])
    near_miss = np.array([kind == "near_miss" for kind in kinds], dtype=bool)
    counts = {kind: kinds.count(kind) for kind in KINDS}
    return {
        "n_images": int(heat.shape[0]),
        "n_defect_images": n_defect,
        "pointing_game": json_float(np.mean(distances <= rule.tolerance_px)) if n_defect else None,
        "tolerance_px": rule.tolerance_px,
        "inside_outside_ratio": _median_or_none(
            [_inside_outside_ratio(h, m) for h, m in zip(d_heat, d_mask, strict=True)]
        ),
        "pixel_auroc": json_float(pixel_auroc(heat, mask)),
        "aupro": json_float(aupro(heat, mask, fpr_limit)),
        "fpr_limit": fpr_limit,
        "iou": json_float(np.mean(iou(d_heat, d_mask, iou_threshold))) if n_defect else None,
        "iou_threshold": iou_threshold,
        "kinds": counts,
        "kind_share": {
            kind: json_float(count / n_defect) if n_defect else None
            for kind, count in counts.items()
        },
        "near_miss_median_distance_px": _median_or_none(distances[near_miss]),
    }


def rows_to_map(manifest: pd.DataFrame, train_images: int) -> tuple[pd.DataFrame, list[str]]:
    """The real images GradCAM maps: every test image, then the first `train_images`
    anomalous training images (they choose the IoU threshold); a warning when there are
    fewer of those than asked."""
    test = manifest[manifest["split"] == "test"]
    train = manifest[(manifest["split"] == "train") & (manifest["label"] == 1)]
    warnings = []
    if 0 < len(train) < train_images:
        warnings.append(
            f"gradcam.train_images={train_images} is above the number of anomalous training "
            f"images ({len(train)}); mapped {len(train)}"
        )
    return pd.concat([test, train.head(train_images)]), warnings


@dataclass
class MapScores:
    """What `score_maps` finds: metrics/gradcam.json, each image's kind ("" for images
    without a mask), and warnings for the user."""

    metrics: dict
    kinds: np.ndarray
    warnings: list[str]


def score_maps(
    rows: pd.DataFrame,
    heatmaps: np.ndarray,
    masks: np.ndarray,
    peaks: np.ndarray,
    settings: GradcamParams,
) -> MapScores:
    """Localisation scores of the test, train and synthetic rows (`split` test, train or
    SYNTHETIC). The IoU threshold is chosen on training images only: the real anomalous
    ones, or without them (good-only training) the synthetic anomalies made from the good
    ones. An anomalous image without a mask is left out: its defect pixels are unknown."""
    split = rows["split"].to_numpy()
    anomalous = (rows["label"] == 1).to_numpy()
    has_mask = masks.any(axis=(1, 2))
    scored = ~anomalous | has_mask
    train_scored = (split == "train") & has_mask
    synthetic_scored = (split == SYNTHETIC) & has_mask
    chooser = train_scored if train_scored.any() else synthetic_scored
    iou_threshold = (
        choose_iou_threshold(heatmaps[chooser], masks[chooser])
        if chooser.any()
        else DEFAULT_IOU_THRESHOLD
    )
    rule = KindRule.from_params(settings)
    metrics = {
        name: localization_summary(
            heatmaps[chosen],
            masks[chosen],
            peaks[chosen],
            rule,
            iou_threshold,
            settings.fpr_limit,
        )
        for name, chosen in (
            ("test", (split == "test") & scored),
            ("train", train_scored),
            ("synthetic", synthetic_scored),
        )
        if (chosen & anomalous).any()
    }
    metrics["anomalous_without_mask"] = int((anomalous & ~has_mask).sum())
    metrics["train_images_used"] = int((split == "train").sum())
    warnings = []
    unscored = rows.loc[anomalous & ~has_mask, "path"].tolist()
    if unscored:
        warnings.append(
            f"gradcam: {len(unscored)} defect image(s) without a mask left out of the "
            f"localization scores: {', '.join(unscored[:10])}"
        )
    kinds = np.full(len(rows), "", dtype=object)
    if has_mask.any():
        kinds[has_mask] = classify_kinds(heatmaps[has_mask], masks[has_mask], peaks[has_mask], rule)
    return MapScores(metrics, kinds, warnings)
