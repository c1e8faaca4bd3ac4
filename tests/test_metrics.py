"""Image-level metrics: a hand-computed case, agreement with scikit-learn, edge cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.metrics import roc_curve as sklearn_roc_curve

from metricad.analysis.metrics import (
    classification_metrics,
    confusion_table,
    json_float,
    predict_anomalous,
    roc_curve_table,
    roc_curves,
)
from metricad.analysis.roc import roc_auc, roc_curve

# Six images; at threshold 0.5 image 1 (good, 0.6) is a false alarm and image 4 (cut, 0.4) is
# missed: 2 errors. Image 5 sits exactly on the threshold and counts as anomalous (>=).
HAND_DEFECTS = ["good", "good", "good", "cut", "cut", "color"]
HAND_LABELS = np.array([0, 0, 0, 1, 1, 1])
HAND_PROBS = np.array([0.1, 0.6, 0.2, 0.9, 0.4, 0.5])


def _plain_json(value: object) -> bool:
    """True when value is built only from dict/str/int/float/None (no numpy scalars)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return value is None or type(value) in (int, float)


def test_hand_computed_case() -> None:
    result = classification_metrics(HAND_LABELS, HAND_PROBS, HAND_DEFECTS)
    assert result["n_images"] == 6
    assert result["n_anomalous"] == 3
    assert result["errors"] == 2
    assert result["accuracy"] == round(4 / 6, 6)
    # TP = 2 (images 3, 5), FP = 1, FN = 1.
    assert result["precision"] == round(2 / 3, 6)
    assert result["recall"] == round(2 / 3, 6)
    assert result["f1"] == round(2 / 3, 6)
    # Anomalous scores beat good ones in 3 + 2 + 2 of the 9 pairs.
    assert result["auroc"] == round(7 / 9, 6)
    assert result["specificity"] == round(2 / 3, 6)
    assert result["recall_per_defect"] == {"color": 1.0, "cut": 0.5}


def test_threshold_changes_the_decision() -> None:
    result = classification_metrics(HAND_LABELS, HAND_PROBS, HAND_DEFECTS, threshold=0.3)
    # Now the 0.4 cut is caught; only the 0.6 good image is wrong.
    assert result["errors"] == 1
    assert result["recall_per_defect"] == {"color": 1.0, "cut": 1.0}
    assert result["threshold"] == 0.3


def test_result_is_plain_json() -> None:
    result = classification_metrics(HAND_LABELS, HAND_PROBS, HAND_DEFECTS)
    assert _plain_json(result)
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40
    defects = rng.choice(["good", "cut", "fold", "poke"], size=n).tolist()
    labels = np.array([d != "good" for d in defects], dtype=int)
    probs = np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1)
    pred = (probs >= 0.5).astype(int)
    result = classification_metrics(labels, probs, defects)
    expected = {
        "accuracy": accuracy_score(labels, pred),
        "precision": precision_score(labels, pred, zero_division=0),
        "recall": recall_score(labels, pred, zero_division=0),
        "f1": f1_score(labels, pred, zero_division=0),
        "auroc": roc_auc_score(labels, probs),
    }
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-6), key
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    assert result["errors"] == fp + fn
    assert result["specificity"] == pytest.approx(tn / (tn + fp), abs=1e-6)
    for name, value in result["recall_per_defect"].items():
        chosen = np.array(defects) == name
        assert value == pytest.approx(pred[chosen].mean(), abs=1e-6)


def test_one_class_only() -> None:
    labels = np.zeros(4, dtype=int)
    probs = np.array([0.1, 0.7, 0.2, 0.3])
    result = classification_metrics(labels, probs, ["good"] * 4)
    assert result["auroc"] is None
    assert result["errors"] == 1
    # No anomalous image (a good-only test split): undefined, reported as absent, not as 0.
    assert result["precision"] is None and result["recall"] is None and result["f1"] is None
    assert result["recall_per_defect"] == {}
    assert result["specificity"] == 0.75
    json.dumps(result, allow_nan=False)


def test_only_anomalous_has_no_specificity() -> None:
    result = classification_metrics(np.ones(2, dtype=int), np.array([0.9, 0.8]), ["cut", "cut"])
    assert result["specificity"] is None
    assert result["recall"] == 1.0
    assert result["auroc"] is None


def test_mismatched_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="defect"):
        classification_metrics(HAND_LABELS, HAND_PROBS, HAND_DEFECTS[:5])
    with pytest.raises(ValueError, match="labels"):
        classification_metrics(HAND_LABELS[:5], HAND_PROBS, HAND_DEFECTS)
    with pytest.raises(ValueError, match="good"):
        classification_metrics(1 - HAND_LABELS, HAND_PROBS, HAND_DEFECTS)
    with pytest.raises(ValueError, match="0 .good. or 1"):
        classification_metrics(HAND_LABELS * 2, HAND_PROBS, HAND_DEFECTS)


def test_predict_anomalous_uses_greater_or_equal() -> None:
    assert predict_anomalous(np.array([0.49, 0.5, 0.51])).tolist() == [False, True, True]


def test_json_float() -> None:
    assert json_float(1 / 3) == 0.333333
    assert json_float(np.float64(2.0)) == 2.0
    assert type(json_float(np.float64(2.0))) is float
    assert json_float(float("nan")) is None
    assert json_float(float("inf")) is None
    assert json_float(None) is None


def test_roc_curve_table_matches_sklearn() -> None:
    table = roc_curve_table(HAND_LABELS, HAND_PROBS)
    fpr, tpr, thresholds = sklearn_roc_curve(HAND_LABELS, HAND_PROBS)
    assert list(table.columns) == ["fpr", "tpr", "threshold"]
    np.testing.assert_allclose(table["fpr"], fpr, atol=1e-6)
    np.testing.assert_allclose(table["tpr"], tpr, atol=1e-6)
    np.testing.assert_allclose(table["threshold"].iloc[1:], thresholds[1:], atol=1e-6)
    # sklearn's +inf "flag nothing" threshold is written as 1.0.
    assert table["threshold"].iloc[0] == 1.0
    assert np.isfinite(table.to_numpy()).all()
    json.loads(table.to_json(orient="records"))


def test_roc_curve_table_one_class_is_empty() -> None:
    table = roc_curve_table(np.ones(3, dtype=int), np.array([0.2, 0.5, 0.9]))
    assert list(table.columns) == ["fpr", "tpr", "threshold"]
    assert table.empty


def test_roc_curves_stack_each_scores_curve_under_its_name() -> None:
    distances = np.arange(len(HAND_PROBS), dtype=float)
    table = roc_curves(HAND_LABELS, {"softmax": HAND_PROBS, "knn": distances})
    assert list(table.columns) == ["score", "fpr", "tpr", "threshold"]
    for name, values in (("softmax", HAND_PROBS), ("knn", distances)):
        mine = table[table["score"] == name].drop(columns="score").reset_index(drop=True)
        assert mine.equals(roc_curve_table(HAND_LABELS, values))


def test_confusion_table() -> None:
    pred = predict_anomalous(HAND_PROBS)
    table = confusion_table(HAND_LABELS, pred)
    assert list(table.columns) == ["actual", "predicted"]
    assert len(table) == 6
    assert table["actual"].tolist() == ["good"] * 3 + ["anomalous"] * 3
    assert table["predicted"].tolist() == [
        "good",
        "anomalous",
        "good",
        "anomalous",
        "good",
        "anomalous",
    ]
    counts = pd.crosstab(table["actual"], table["predicted"])
    assert counts.loc["good", "anomalous"] == 1
    assert counts.loc["anomalous", "good"] == 1


def test_confusion_table_rejects_probabilities() -> None:
    with pytest.raises(ValueError, match="predictions"):
        confusion_table(HAND_LABELS, HAND_PROBS)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, 80).flatmap(
        lambda n: st.tuples(
            st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda t: 0 < sum(t) < n),
            st.lists(st.integers(0, 6), min_size=n, max_size=n),  # ties
            st.lists(st.floats(-1e3, 1e3, width=32), min_size=n, max_size=n),
            st.sampled_from([np.float64, np.float32]),
            st.booleans(),
        )
    )
)
def test_roc_curve_and_auroc_are_sklearns_bit_for_bit(case) -> None:
    """evaluate and gradcam compute these without sklearn.metrics (its import is 2 s a stage):
    the same floats, ties and collinear points included, float32 heat as well."""
    truth, tied, spread, dtype, with_ties = case
    labels = np.array(truth, dtype=bool if dtype is np.float32 else int)
    scores = np.array(tied if with_ties else spread, dtype=dtype)
    theirs = sklearn_roc_curve(labels, scores)
    for mine, expected in zip(roc_curve(labels, scores), theirs, strict=True):
        np.testing.assert_array_equal(mine, expected)
        np.testing.assert_array_equal(np.signbit(mine), np.signbit(expected))  # -0.0 too
    assert roc_auc(labels, scores) == roc_auc_score(labels, scores)
