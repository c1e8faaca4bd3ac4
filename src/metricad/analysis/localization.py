"""Heat maps measured against the ground-truth masks, split by split: which images are mapped,
and per split the summary of gradcam.json (pixel_metrics.py's figures and kinds.py's kinds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metricad.analysis.kinds import (
    DEFAULT_IOU_THRESHOLD,
    KINDS,
    KindRule,
    checked_peaks,
    choose_iou_threshold,
    classify_kinds,
)
from metricad.analysis.metrics import json_float
from metricad.analysis.pixel_metrics import (
    aupro,
    checked_stacks,
    iou,
    pixel_auroc,
    unchecked_hot_spot_distance,
    unchecked_inside_outside_ratio,
)
from metricad.data.manifest import SYNTHETIC
from metricad.params import GradcamParams


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
    heat, mask = checked_stacks(heatmaps, masks)
    defect = mask.any(axis=(1, 2))
    peak_values = checked_peaks(peaks, heat.shape[0])
    d_heat, d_mask = heat[defect], mask[defect]
    n_defect = int(defect.sum())

    kinds = classify_kinds(d_heat, d_mask, peak_values[defect], rule)
    distances = np.array(
        [unchecked_hot_spot_distance(h, m) for h, m in zip(d_heat, d_mask, strict=True)]
    )
    near_miss = np.array([kind == "near_miss" for kind in kinds], dtype=bool)
    counts = {kind: kinds.count(kind) for kind in KINDS}
    return {
        "n_images": int(heat.shape[0]),
        "n_defect_images": n_defect,
        "pointing_game": json_float(np.mean(distances <= rule.tolerance_px)) if n_defect else None,
        "tolerance_px": rule.tolerance_px,
        "inside_outside_ratio": _median_or_none(
            [unchecked_inside_outside_ratio(h, m) for h, m in zip(d_heat, d_mask, strict=True)]
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
