"""ROC curve and its area for a binary truth, the floats scikit-learn 1.9 gives (`roc_curve`,
`roc_auc_score`, no sample weights): evaluate and gradcam import this instead of
sklearn.metrics, whose import takes about 2 s of each stage. tests/test_metrics.py holds both
to sklearn's, bit for bit.

The same arithmetic: scores sorted high to low, one point per distinct score (its last tie),
exact float64 counts of true and false positives there, the points on a straight line between
two others dropped, (0, 0) added under an infinite threshold, rates divided by the totals, the
area by the trapezoidal rule. A point counts a whole tie; its threshold is the tie's last
score in the input order, as sklearn's stable descending sort gives it."""

from __future__ import annotations

import numpy as np


def roc_curve(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) from the highest threshold (+inf:
    flag nothing) down; `truth` 1 or True for positive, both classes present, scores finite
    (ValueError otherwise, as sklearn)."""
    scores, truth = np.asarray(scores).ravel(), np.asarray(truth).ravel()
    if truth.size != scores.size or not np.isfinite(scores).all():
        raise ValueError(f"ROC: {truth.size} labels and {scores.size} finite scores expected")
    # High to low, ties in their order (a tie's last image gives the threshold: -0.0 or 0.0)
    order = scores.size - 1 - np.argsort(scores[::-1], kind="stable")[::-1]
    ranked = scores[order]
    positive = (truth[order] == 1).astype(np.float64)
    ends = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # each tie's last image
    true_positives = np.cumsum(positive)[ends]
    false_positives = 1 + ends.astype(np.float64) - true_positives
    thresholds = ranked[ends]
    if false_positives.size > 2:
        corner = np.r_[
            True,
            np.logical_or(np.diff(false_positives, 2), np.diff(true_positives, 2)),
            True,
        ]
        true_positives, false_positives = true_positives[corner], false_positives[corner]
        thresholds = thresholds[corner]
    true_positives = np.r_[0.0, true_positives]
    false_positives = np.r_[0.0, false_positives]
    thresholds = np.r_[np.inf, thresholds.astype(np.float64)]
    return false_positives / false_positives[-1], true_positives / true_positives[-1], thresholds


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under roc_curve; both classes present, scores finite."""
    fpr, tpr, _ = roc_curve(truth, scores)
    return float(np.trapezoid(tpr, fpr))
