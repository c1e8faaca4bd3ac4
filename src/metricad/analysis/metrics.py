"""Image-level classification metrics for the `evaluate` stage: good (0) vs anomalous (1).

Everything returned is plain Python (floats rounded to 6 decimals, None where a value is
undefined) so the JSON and CSV files DVC tracks stay byte-stable and valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from metricad.analysis.roc import roc_auc, roc_curve

GOOD = "good"
ANOMALOUS = "anomalous"
DECIMALS = 6


def json_float(value: float | None) -> float | None:
    """`value` rounded to DECIMALS; None for None, NaN or infinity (JSON holds neither)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), DECIMALS)


def predict_anomalous(prob_anomalous: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The decision rule used everywhere: anomalous when the probability is >= threshold."""
    return np.asarray(prob_anomalous, dtype=float) >= threshold


def _binary(values: np.ndarray, n: int, what: str = "labels") -> np.ndarray:
    """`values` as a 0/1 int vector of length n; anything else is a caller bug."""
    values = np.asarray(values).ravel()
    if values.shape[0] != n:
        raise ValueError(f"got {values.shape[0]} {what} for {n} images")
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"{what} must be 0 (good) or 1 (anomalous)")
    return values.astype(int)


def _share(mask: np.ndarray) -> float | None:
    """Share of True in `mask`; None for an empty selection (a rate of nothing is undefined)."""
    return json_float(mask.mean()) if mask.size else None


def classification_metrics(
    labels: np.ndarray,
    prob_anomalous: np.ndarray,
    defects: Sequence[str],
    threshold: float = 0.5,
) -> dict:
    """Accuracy, errors, precision/recall/F1 (anomalous = positive), AUROC, per-defect recall.

    `defects` names each image's defect type ("good" for defect-free images) and must agree
    with `labels`. Without anomalous images (a good-only test split) precision, recall and F1
    are None (undefined, not failed); otherwise they are 0.0 when their denominator is 0
    (sklearn's zero_division=0). `auroc` is None when only one class is present.
    `specificity` is the share of good images predicted good, None without good images.
    """
    prob = np.asarray(prob_anomalous, dtype=float).ravel()
    truth = _binary(labels, prob.shape[0])
    defect_names = np.asarray(list(defects), dtype=object)
    if defect_names.shape[0] != prob.shape[0]:
        raise ValueError(f"got {defect_names.shape[0]} defect names for {prob.shape[0]} images")
    # A label/defect mismatch means the arrays were not built from the same image list.
    if not np.array_equal(defect_names != GOOD, truth == 1):
        raise ValueError('labels must be 1 exactly where the defect is not "good"')

    pred = predict_anomalous(prob, threshold).astype(int)
    tp = int(np.sum((pred == 1) & (truth == 1)))
    fp = int(np.sum((pred == 1) & (truth == 0)))
    fn = int(np.sum((pred == 0) & (truth == 1)))
    errors = fp + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    both_classes = np.unique(truth).size == 2
    return {
        "n_images": int(prob.shape[0]),
        "n_anomalous": int(truth.sum()),
        "threshold": json_float(threshold),
        "accuracy": json_float(1 - errors / prob.shape[0]) if prob.shape[0] else None,
        "errors": errors,
        "precision": json_float(precision) if truth.any() else None,
        "recall": json_float(recall) if truth.any() else None,
        "f1": json_float(f1) if truth.any() else None,
        "auroc": json_float(roc_auc(truth, prob)) if both_classes else None,
        "specificity": _share(pred[truth == 0] == 0),
        "recall_per_defect": {
            name: _share(pred[defect_names == name] == 1)
            for name in sorted(set(defect_names) - {GOOD})
        },
    }


def roc_curve_table(labels: np.ndarray, prob_anomalous: np.ndarray) -> pd.DataFrame:
    """ROC curve points as columns `fpr`, `tpr`, `threshold` (rounded to 6 decimals).

    The first threshold is +inf (the "flag nothing" point); it is written as 1.0 for a
    probability, or just above the highest score for an unbounded score (a distance), so the
    file stays valid JSON/CSV. With only one class present, or a NaN score (one that could
    not be computed), the curve is undefined and the frame is empty (the three columns, no
    rows).
    """
    prob = np.asarray(prob_anomalous, dtype=float).ravel()
    truth = _binary(labels, prob.shape[0])
    if np.unique(truth).size < 2 or np.isnan(prob).any():
        return pd.DataFrame({"fpr": [], "tpr": [], "threshold": []}, dtype=float)
    fpr, tpr, thresholds = roc_curve(truth, prob)
    above_all = max(1.0, round(float(prob.max()), DECIMALS) + 10.0**-DECIMALS)
    thresholds = np.where(np.isfinite(thresholds), thresholds, above_all)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thresholds}).round(DECIMALS)


def roc_curves(labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The ROC curve of each score (roc_curve_table), one table: `score`, `fpr`, `tpr`,
    `threshold` (DVC's roc template draws a curve per score)."""
    columns = ["score", "fpr", "tpr", "threshold"]
    tables = [roc_curve_table(labels, values).assign(score=name) for name, values in scores.items()]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]


def confusion_table(labels: np.ndarray, predictions: np.ndarray) -> pd.DataFrame:
    """One row per image: `actual`, `predicted` as "good"/"anomalous" (DVC's confusion plot)."""
    truth = np.asarray(labels).ravel()
    pred = _binary(predictions, truth.shape[0], "predictions")
    names = np.array([GOOD, ANOMALOUS])
    return pd.DataFrame({"actual": names[_binary(truth, pred.shape[0])], "predicted": names[pred]})


def auroc_by_defect(labels: np.ndarray, scores: np.ndarray, defects: Sequence[str]) -> dict:
    """Image AUROC of `scores` over all images, and per defect type (that type's images
    against every good image); None where a class is missing or a score is NaN."""
    scores = np.asarray(scores, dtype=float).ravel()
    truth = _binary(labels, scores.shape[0])
    names = np.asarray(list(defects), dtype=object)

    def auroc(chosen: np.ndarray) -> float | None:
        if np.unique(truth[chosen]).size < 2 or np.isnan(scores[chosen]).any():
            return None
        return json_float(roc_auc(truth[chosen], scores[chosen]))

    good = names == GOOD
    return {
        "auroc": auroc(np.ones_like(good)),
        "auroc_per_defect": {
            name: auroc(good | (names == name)) for name in sorted(set(names) - {GOOD})
        },
    }


def at_operating_point(
    labels: np.ndarray, flagged: np.ndarray, defects: Sequence[str], threshold: float
) -> dict:
    """How a score's operating point does on a split: the false-positive rate on its good
    images and the recall on its defects, overall and per defect type (None where a group
    is empty, or the threshold is undefined)."""
    truth = _binary(labels, len(flagged)).astype(bool)
    flagged = np.asarray(flagged, dtype=bool)
    names = np.asarray(list(defects), dtype=object)
    defined = math.isfinite(threshold)
    return {
        "threshold": json_float(threshold),
        "false_positive_rate": _share(flagged[~truth]) if defined else None,
        "recall": _share(flagged[truth]) if defined else None,
        "recall_per_defect": {
            name: _share(flagged[names == name]) if defined else None
            for name in sorted(set(names[truth]))
        },
    }
