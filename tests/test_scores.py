"""Embedding anomaly scores against a direct scikit-learn / numpy computation."""

from __future__ import annotations

import typing

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from metricad.metrics import auroc_by_defect
from metricad.params import EvaluateParams
from metricad.scores import SCORES, anomaly_scores, gaussian_distance, knn_distance, unit_rows


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
