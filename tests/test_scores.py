"""The anomaly scores (scoring/) against a direct scikit-learn / numpy computation, the head
that holds them with their operating points, its file, and the registry."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from metricad.analysis.metrics import at_operating_point, auroc_by_defect
from metricad.analysis.tsne import unit_rows
from metricad.errors import MetricadError
from metricad.params import ScoreName, ScoreParams
from metricad.scoring import SCORES
from metricad.scoring.exact import row_dots, spd_inverse
from metricad.scoring.gaussian import MIN_SHRINKAGE, ledoit_wolf
from metricad.scoring.head import (
    SCORE_NAMES,
    ScoringHead,
    fitted_head,
    operating_point,
)
from metricad.scoring.knn import KnnSettings
from metricad.scoring.scorer_file import (
    load_scoring,
    read_embedding_settings,
    read_scoring,
    save_scoring,
)
from metricad.validation import section

# The scores of a network without a segmentation head (the `map` score needs one:
# tests/test_segmentation.py).
EMBEDDING_SCORES = tuple(ScoreParams().scores)


def _fitted(reference: np.ndarray, k: int = 3, names=EMBEDDING_SCORES) -> ScoringHead:
    head = ScoringHead(names, names[-1], {"knn": KnnSettings(k=k)})
    head.fit_scores(reference)
    return head


def _scores(head: ScoringHead, queries: np.ndarray) -> dict[str, np.ndarray]:
    # One view per image: (N, 1, D).
    values = head.score_values(torch.from_numpy(queries)[:, None], torch.zeros(len(queries)))
    return {name: values[:, i].numpy() for i, name in enumerate(head.names)}


def _toy(seed: int = 0, good: int = 30, dim: int = 6):
    rng = np.random.default_rng(seed)
    reference = rng.normal(0, 1, (good, dim)) + 3.0
    queries = np.concatenate([rng.normal(0, 1, (5, dim)) + 3.0, rng.normal(0, 1, (5, dim))])
    return reference, queries


def test_knn_is_the_mean_cosine_distance_to_the_k_nearest():
    reference, queries = _toy()
    ours = _scores(_fitted(reference, k=3), queries)["knn"]
    cosine = 1 - unit_rows(queries) @ unit_rows(reference).T
    direct = np.sort(cosine, axis=1)[:, :3].mean(axis=1)
    np.testing.assert_allclose(ours, direct, atol=1e-12)
    distances, _ = (
        NearestNeighbors(n_neighbors=3, metric="cosine").fit(reference).kneighbors(queries)
    )
    np.testing.assert_allclose(ours, distances.mean(axis=1), atol=1e-12)


def test_gaussian_is_the_mahalanobis_distance_under_ledoit_wolf():
    reference, queries = _toy()
    head = _fitted(reference)
    ours = _scores(head, queries)["gaussian"]
    # The scores see unit-length embeddings (the cosine head only sees direction).
    reference, queries = unit_rows(reference), unit_rows(queries)
    estimator = LedoitWolf().fit(reference)
    centred = queries - reference.mean(axis=0)
    precision = np.linalg.inv(estimator.covariance_)
    direct = np.sqrt(np.einsum("ij,jk,ik->i", centred, precision, centred))
    np.testing.assert_allclose(ours, direct, rtol=1e-8)
    assert head.used()["gaussian_shrinkage"] == pytest.approx(estimator.shrinkage_, abs=1e-6)


@pytest.mark.parametrize(("count", "dims"), [(30, 6), (40, 64), (3, 8), (300, 12)])
def test_the_fixed_order_ledoit_wolf_is_scikit_learns(count, dims):
    rows = unit_rows(np.random.default_rng(count).normal(size=(count, dims)) + 0.5)
    estimator = LedoitWolf().fit(rows)
    location, covariance, shrinkage = ledoit_wolf(torch.from_numpy(rows))
    assert shrinkage == pytest.approx(estimator.shrinkage_, abs=1e-12)
    np.testing.assert_allclose(location, estimator.location_, atol=1e-15)
    np.testing.assert_allclose(covariance, estimator.covariance_, atol=1e-15)
    inverse = spd_inverse(covariance).numpy()
    np.testing.assert_allclose(inverse, np.linalg.inv(estimator.covariance_), rtol=1e-9)


def test_two_images_leave_a_floor_of_shrinkage_and_finite_scores():
    rows = unit_rows(np.random.default_rng(0).normal(size=(2, 5)))
    _, covariance, shrinkage = ledoit_wolf(torch.from_numpy(rows))
    assert LedoitWolf().fit(rows).shrinkage_ == 0.0 and shrinkage == MIN_SHRINKAGE
    assert torch.isfinite(spd_inverse(covariance)).all()


def test_a_rows_scores_do_not_depend_on_the_batch_it_comes_in():
    """The float64 products add in a fixed order (scoring/exact.py): predict scores an image
    alone or among others, and the pipeline all at once, with the same bits."""
    reference, _ = _toy(dim=40, good=150)
    head = _fitted(reference, k=5)
    queries = torch.from_numpy(np.random.default_rng(3).normal(size=(70, 1, 40)))
    together = head.score_values(queries, torch.zeros(70))
    for start, stop in ((0, 1), (5, 9), (3, 70)):
        alone = head.score_values(queries[start:stop], torch.zeros(stop - start))
        assert torch.equal(alone, together[start:stop])
    queries = queries[:, 0]
    dots = row_dots(queries, queries[:50])
    np.testing.assert_allclose(dots, queries @ queries[:50].T, rtol=1e-12, atol=1e-12)


def test_with_views_the_scores_fit_every_view_and_average_an_images_views():
    """embed.views: dihedral: embeddings (N, V, D). The Gaussian is fitted on every view of the
    good images, and an image's score is the mean of its views' scores (softmax: its mean
    probability, which the embed stage already averaged)."""
    rng = np.random.default_rng(1)
    reference, queries = rng.normal(size=(12, 4, 6)) + 3.0, rng.normal(size=(5, 4, 6)) + 1.0
    head = _fitted(reference)
    flat = _fitted(reference.reshape(-1, 6))
    probabilities = torch.tensor(rng.uniform(size=5))
    values = head.score_values(torch.from_numpy(queries), probabilities)
    per_view = [
        flat.score_values(torch.from_numpy(queries[:, v : v + 1]), probabilities) for v in range(4)
    ]
    np.testing.assert_allclose(values, torch.stack(per_view).mean(dim=0), rtol=1e-12)
    assert head.used() == flat.used() and head.used()["gaussian_shrinkage"] > 0
    np.testing.assert_array_equal(values[:, SCORE_NAMES.index("softmax")], probabilities)


def _pipeline_head(names, embeddings: np.ndarray, is_reference: np.ndarray, k: int = 5):
    """fitted_head on (N, 1, D) embeddings whose reference rows are good training images and
    the rest test images (no validation split: the operating points fall back, with a
    warning); its values on every row, and its warnings."""
    split = np.where(is_reference, "train", "test")
    labels = np.zeros(len(embeddings), dtype=int)
    no_probability = np.zeros(len(embeddings))
    settings = section(ScoreParams, knn={"k": k})
    head, warnings = fitted_head(
        names, names[-1], embeddings, no_probability, {}, split, labels, settings
    )
    values = head.score_values(torch.from_numpy(embeddings), torch.from_numpy(no_probability))
    return head, {name: values[:, i].numpy() for i, name in enumerate(names)}, warnings


def test_scores_rank_the_far_cluster_higher():
    reference, queries = _toy()
    embeddings = np.concatenate([reference, queries])[:, None]
    is_reference = np.arange(len(embeddings)) < len(reference)
    head, scores, _ = _pipeline_head(("softmax", "knn", "gaussian"), embeddings, is_reference)
    labels = np.r_[np.zeros(5), np.ones(5)]
    for name in ("knn", "gaussian"):
        assert roc_auc_score(labels, scores[name][~is_reference]) > 0.9
    assert head.used()["knn_k"] == 5


def test_small_sets_lower_k_and_shrink_with_warnings():
    reference, queries = _toy(good=3, dim=8)
    embeddings = np.concatenate([reference, queries])[:, None]
    is_reference = np.arange(len(embeddings)) < 3
    head, scores, warnings = _pipeline_head(("knn", "gaussian"), embeddings, is_reference)
    assert head.used()["knn_k"] == 3
    assert "score.knn.k=5" in warnings[0] and "used k=3" in warnings[0]
    assert "8 dimensions on 3 good training images" in warnings[1]
    assert "no validation image" in warnings[2]
    assert np.isfinite(scores["gaussian"]).all()


def test_one_good_image_leaves_the_gaussian_undefined_not_an_error():
    embeddings = np.random.default_rng(0).normal(size=(4, 1, 8))  # one view each
    reference = np.array([True, False, False, False])
    _, scores, warnings = _pipeline_head(("gaussian",), embeddings, reference)
    assert np.isnan(scores["gaussian"]).all()
    assert "needs at least 2 good training images" in warnings[0]


def test_the_registry_holds_every_score_the_params_schema_names():
    hint = typing.get_type_hints(ScoreParams)["scores"]
    assert typing.get_args(typing.get_args(hint)[0]) == SCORE_NAMES
    assert ScoreParams().scores == ["softmax", "knn", "gaussian"]
    assert SCORE_NAMES == ("softmax", "knn", "gaussian", "map", "patch")
    SCORES.check_names(ScoreName)
    with pytest.raises(MetricadError, match=r"score.scores: no score named 'lof'"):
        SCORES["lof"]


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
    threshold, span = operating_point(good, "quantile", 0.9, 3.0)
    assert threshold == pytest.approx(1.9) and span == pytest.approx(1.0)
    # No good validation image is above the 1.0 quantile: nothing good is flagged.
    assert operating_point(good, "quantile", 1.0, 3.0)[0] == good.max()
    spread, _ = operating_point(good, "mean_sd", 0.99, 2.0)
    assert spread == pytest.approx(good.mean() + 2.0 * good.std(ddof=1))
    assert operating_point(np.array([3.0]), "quantile", 0.99, 3.0) == (3.0, 3.0)  # no spread
    undefined, _ = operating_point(np.full(4, np.nan), "quantile", 0.99, 3.0)
    assert np.isnan(undefined)


def test_the_head_normalises_and_decides_on_the_verdict_score():
    reference, queries = _toy()
    head = _fitted(reference)
    good = torch.from_numpy(reference[:10, None])
    head.set_operating_points(head.score_values(good, torch.zeros(10)), ScoreParams())
    values, normalized, anomalous = head(
        torch.from_numpy(queries)[:, None], torch.zeros(len(queries))
    )
    column = head.names.index("gaussian")
    threshold, span = float(head.thresholds[column]), float(head.spans[column])
    expected = np.clip((values[:, column].numpy() - threshold) / span + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(normalized.numpy(), expected)
    assert (anomalous.numpy() == (values[:, column].numpy() > threshold)).all()
    assert anomalous[5:].all() and not anomalous[:5].all()  # the far cluster is flagged


def test_the_scorer_file_round_trips_and_refuses_foreign_files(tmp_path):
    reference, queries = _toy()
    head = _fitted(reference)
    head.set_operating_points(torch.arange(15.0, dtype=torch.float64).view(5, 3), ScoreParams())
    path = tmp_path / "scorer.npz"
    save_scoring(path, head, {"views": "single", "batch_size": 8})
    assert read_scoring(path)[1] == {"views": "single", "batch_size": 8}
    loaded = load_scoring(path)
    assert loaded.names == head.names and loaded.verdict == head.verdict
    assert loaded.used() == head.used()
    probabilities = torch.full((len(queries),), 0.25, dtype=torch.float64)
    for ours, theirs in zip(
        head(torch.from_numpy(queries)[:, None], probabilities),
        loaded(torch.from_numpy(queries)[:, None], probabilities),
        strict=True,
    ):
        assert torch.equal(ours, theirs)
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


def test_the_embedding_settings_are_checked_with_one_line_errors(tmp_path):
    path = tmp_path / "settings.json"
    with pytest.raises(MetricadError, match="settings.json: not found"):
        read_embedding_settings(path)
    path.write_text("{not json")
    with pytest.raises(MetricadError, match="settings.json: not readable"):
        read_embedding_settings(path)
    path.write_text('{"views": "single"}')
    with pytest.raises(MetricadError, match="lacks views or batch_size"):
        read_embedding_settings(path)
    path.write_text('{"views": "dihedral", "batch_size": 8}')
    assert read_embedding_settings(path) == {"views": "dihedral", "batch_size": 8}
