"""Embedding anomaly scores against a direct scikit-learn / numpy computation."""

from __future__ import annotations

import typing

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from metricad.errors import MetricadError
from metricad.metrics import at_operating_point, auroc_by_defect
from metricad.params import EvaluateParams
from metricad.scores import (
    SCORES,
    Scoring,
    anomaly_scores,
    fit_scorer,
    gaussian_distance,
    knn_distance,
    load_scoring,
    operating_point,
    save_scoring,
    unit_rows,
)


def _toy(seed: int = 0, good: int = 30, dim: int = 6):
    rng = np.random.default_rng(seed)
    reference = rng.normal(0, 1, (good, dim)) + 3.0
    queries = np.concatenate([rng.normal(0, 1, (5, dim)) + 3.0, rng.normal(0, 1, (5, dim))])
    return reference, queries


def test_knn_is_the_mean_cosine_distance_to_the_k_nearest():
    reference, queries = _toy()
    ours = knn_distance(reference, queries, k=3)
    cosine = 1 - unit_rows(queries) @ unit_rows(reference).T
    direct = np.sort(cosine, axis=1)[:, :3].mean(axis=1)
    np.testing.assert_allclose(ours, direct, atol=1e-12)
    distances, _ = (
        NearestNeighbors(n_neighbors=3, metric="cosine").fit(reference).kneighbors(queries)
    )
    np.testing.assert_allclose(ours, distances.mean(axis=1), atol=1e-12)


def test_gaussian_is_the_mahalanobis_distance_under_ledoit_wolf():
    reference, queries = _toy()
    ours, shrinkage = gaussian_distance(reference, queries)
    estimator = LedoitWolf().fit(reference)
    centred = queries - reference.mean(axis=0)
    precision = np.linalg.inv(estimator.covariance_)
    direct = np.sqrt(np.einsum("ij,jk,ik->i", centred, precision, centred))
    np.testing.assert_allclose(ours, direct, rtol=1e-8)
    assert shrinkage == pytest.approx(estimator.shrinkage_)


def test_scores_rank_the_far_cluster_higher():
    reference, queries = _toy()
    embeddings = np.concatenate([reference, queries])
    is_reference = np.arange(len(embeddings)) < len(reference)
    report = anomaly_scores(SCORES, embeddings, np.zeros(len(embeddings)), is_reference, k=5)
    labels = np.r_[np.zeros(5), np.ones(5)]
    for name in ("knn", "gaussian"):
        assert roc_auc_score(labels, report.scores[name][~is_reference]) > 0.9
    assert report.used["knn_k"] == 5


def test_small_sets_lower_k_and_shrink_with_warnings():
    reference, queries = _toy(good=3, dim=8)
    embeddings = np.concatenate([reference, queries])
    is_reference = np.arange(len(embeddings)) < 3
    report = anomaly_scores(["knn", "gaussian"], embeddings, None, is_reference, k=5)
    assert report.used["knn_k"] == 3
    assert "evaluate.knn_k=5" in report.warnings[0] and "used k=3" in report.warnings[0]
    assert "8 dimensions on 3 good training images" in report.warnings[1]
    assert np.isfinite(report.scores["gaussian"]).all()


def test_scores_in_params_are_the_scores_computed():
    hint = typing.get_type_hints(EvaluateParams)["scores"]
    assert typing.get_args(typing.get_args(hint)[0]) == SCORES
    assert EvaluateParams().scores == list(SCORES)


def test_auroc_by_defect_against_sklearn():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.5])
    defects = ["good", "good", "good", "cut", "cut", "fold", "fold"]
    result = auroc_by_defect(labels, scores, defects)
    assert result["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    cut = [0, 1, 2, 3, 4]
    assert result["auroc_per_defect"]["cut"] == pytest.approx(
        roc_auc_score(labels[cut], scores[cut])
    )
    assert result["auroc_per_defect"]["fold"] == 1.0
    assert auroc_by_defect(labels[3:], scores[3:], defects[3:])["auroc"] is None


def test_operating_points_come_from_good_images_only():
    good = np.linspace(1.0, 2.0, 11)
    point = operating_point(good, "quantile", 0.9, 3.0)
    assert point.threshold == pytest.approx(1.9) and point.span == pytest.approx(1.0)
    # No good validation image is above the 1.0 quantile: nothing good is flagged, and a
    # set of good images alone never makes everything anomalous.
    strict = operating_point(good, "quantile", 1.0, 3.0)
    assert not strict.anomalous(good).any() and strict.anomalous(np.array([2.5])).all()
    spread = operating_point(good, "mean_sd", 0.99, 2.0)
    assert spread.threshold == pytest.approx(good.mean() + 2.0 * good.std(ddof=1))
    assert point.normalized(np.array([1.9, 0.0, 100.0])).tolist() == [0.5, 0.0, 1.0]
    single = operating_point(np.array([3.0]), "quantile", 0.99, 3.0)
    assert (single.threshold, single.span) == (3.0, 3.0)  # no spread: scaled by the threshold
    undefined = operating_point(np.full(4, np.nan), "quantile", 0.99, 3.0)
    assert np.isnan(undefined.threshold) and not undefined.anomalous(np.array([1e9])).any()


def test_the_scorer_file_round_trips_and_refuses_foreign_files(tmp_path):
    reference, queries = _toy()
    scorer, _ = fit_scorer(reference, 3)
    points = {name: operating_point(np.arange(5.0), "quantile", 0.9, 3.0) for name in SCORES}
    scoring = Scoring(scorer, SCORES, points, "gaussian")
    path = tmp_path / "scorer.npz"
    save_scoring(path, scoring, {"cam": ["gradcam++", "layer2", "anomalous"]})
    loaded, record = load_scoring(path)
    assert record["cam"] == ["gradcam++", "layer2", "anomalous"] and loaded.points == points
    probabilities = np.zeros(len(queries))
    for name, values in scoring.scores(queries, probabilities).items():
        np.testing.assert_array_equal(loaded.scores(queries, probabilities)[name], values)
    path.write_bytes(b"not a zip")
    with pytest.raises(MetricadError, match="scorer.npz: not a readable scorer"):
        load_scoring(path)
    with pytest.raises(MetricadError, match="scorer not found"):
        load_scoring(tmp_path / "missing.npz")
    np.savez(path, record=np.array('{"format": "metricad-scorer/0"}'))
    with pytest.raises(MetricadError, match="written by another metricad version"):
        load_scoring(path)


def test_at_operating_point_counts_false_positives_and_recall_per_defect():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    defects = ["good"] * 4 + ["cut", "cut", "poke"]
    flagged = np.array([True, False, False, False, True, False, True])
    result = at_operating_point(labels, flagged, defects, 0.7)
    assert result == {
        "threshold": 0.7,
        "false_positive_rate": 0.25,
        "recall": 0.666667,
        "recall_per_defect": {"cut": 0.5, "poke": 1.0},
    }
    undefined = at_operating_point(labels, flagged, defects, float("nan"))
    assert undefined["threshold"] is None and undefined["recall"] is None
