"""Heat maps against ground-truth masks, pixel by pixel: pointing game, inside/outside heat
ratio, pixel AUROC, AUPRO (Bergmann et al.) and IoU.

`heatmaps` are float arrays in [0, 1], each normalised by its own maximum (all zero when the
map was zero everywhere); `masks` are boolean arrays of the same shape (non-zero = defect); a
batch is (N, H, W), a single image (H, W).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from metricad.analysis.roc import roc_auc

# Ground-truth regions are 8-connected: pixels touching at a corner belong to one defect.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def checked_stacks(heatmaps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def checked_single(heatmap: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heat, region = checked_stacks(heatmap, mask)
    if heat.shape[0] != 1:
        raise ValueError(f"expected one (H, W) image, got {heat.shape[0]}")
    return heat[0], region[0]


def unchecked_hot_spot_distance(heat: np.ndarray, mask: np.ndarray) -> float:
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
    return unchecked_hot_spot_distance(*checked_single(heatmap, mask))


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
    heat, mask = checked_stacks(heatmaps, masks)
    distances = np.array(
        [unchecked_hot_spot_distance(h, m) for h, m in zip(heat, mask, strict=True)]
    )
    return distances <= tolerance_px  # NaN compares False: no hot spot or no defect = miss


def unchecked_inside_outside_ratio(heat: np.ndarray, mask: np.ndarray) -> float:
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
    return unchecked_inside_outside_ratio(*checked_single(heatmap, mask))


def pixel_auroc(heatmaps: np.ndarray, masks: np.ndarray) -> float | None:
    """ROC AUC of heat against mask over all pixels of all images; None if one class only."""
    heat, mask = checked_stacks(heatmaps, masks)
    if mask.all() or not mask.any():
        return None
    return roc_auc(mask.ravel(), heat.ravel())


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
    curve = _pro_curve(*checked_stacks(heatmaps, masks))
    if curve is None:
        return None
    fpr, pro = curve
    return _area_up_to(fpr, pro, fpr_limit) / fpr_limit


def iou(heatmaps: np.ndarray, masks: np.ndarray, threshold: float) -> np.ndarray:
    """Per image IoU of (map >= threshold) with the mask; NaN where both are empty."""
    heat, mask = checked_stacks(heatmaps, masks)
    hot = heat >= threshold
    intersection = np.count_nonzero(hot & mask, axis=(1, 2))
    union = np.count_nonzero(hot | mask, axis=(1, 2))
    return np.divide(intersection, union, out=np.full(len(union), np.nan), where=union > 0)
