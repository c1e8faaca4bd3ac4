"""Detector and ScoringNet on a tiny in-memory network: what predict and the ONNX export run,
without a pipeline run (tests/test_predict.py and test_export.py cover them end to end)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metricad.data.batches import normalize
from metricad.data.images import resize_rgb
from metricad.model.inference import embed_and_score, softmax_score
from metricad.model.segmentation import map_image_score
from metricad.model.torch_model import build_model
from metricad.model.views import VIEWS
from metricad.params import ScoreParams
from metricad.scoring.head import ScoringHead
from metricad.scoring.knn import KnnSettings
from metricad.serving.detector import Detector
from metricad.serving.scoring_net import ScoringNet, output_names

SIZE, BATCH = 32, 4
CAM = ("gradcam++", "layer2", "anomalous")


def _photos(count: int, side: int = 48, seed: int = 0) -> list[np.ndarray]:
    """uint8 HxWx3 photos of another size than the network's (the detector resizes them)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(count)]


def _resized(photos: list[np.ndarray]) -> torch.Tensor:
    stacked = np.stack([resize_rgb(photo, SIZE) for photo in photos])
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


def _detector(views: str, segmentation: bool = False) -> Detector:
    """A random network whose head is fitted on its own embeddings of 10 photos."""
    torch.manual_seed(0)
    model = build_model(SIZE, embedding_dim=8, segmentation=segmentation).eval()
    names = ["softmax", "knn", "gaussian"] + (["map"] if segmentation else [])
    head = ScoringHead(names, names[-1], {"knn": KnnSettings(k=3)})
    embeddings, _, _ = embed_and_score(
        model, _resized(_photos(10)), BATCH, torch.device("cpu"), False, views=views
    )
    head.fit_scores(embeddings)
    good = torch.tensor([[0.1 * n] * len(names) for n in range(5)], dtype=torch.float64)
    head.set_operating_points(good, ScoreParams())
    return Detector(model, head, CAM, torch.device("cpu"), BATCH, views)


@pytest.mark.parametrize("views", ["single", "dihedral"])
def test_the_detector_scores_as_the_pipeline_does_bit_for_bit(views):
    detector = _detector(views)
    photos = _photos(6, seed=1)
    result = detector.predict(photos, heatmaps=False)
    assert list(result.table.columns) == ["softmax", "knn", "gaussian", "normalized", "anomalous"]
    assert result.heatmaps is None and result.images.shape == (6, SIZE, SIZE, 3)
    # The pipeline's path: embed (padded batches), then the head on the embeddings.
    embeddings, probabilities, _ = embed_and_score(
        detector.model, _resized(photos), BATCH, torch.device("cpu"), False, views=views
    )
    values, normalized, anomalous = detector.head(
        torch.from_numpy(embeddings), torch.from_numpy(softmax_score(probabilities))
    )
    np.testing.assert_array_equal(result.table[list(detector.head.names)].to_numpy(), values)
    np.testing.assert_array_equal(result.table["normalized"], normalized)
    np.testing.assert_array_equal(result.table["anomalous"], anomalous)
    assert ((normalized >= 0) & (normalized <= 1)).all()


def test_an_image_gets_the_same_scores_alone_or_in_a_batch():
    detector = _detector("single")
    photos = _photos(5, seed=2)
    together = detector.predict(photos, heatmaps=False).table
    alone = detector.predict(photos[3:4], heatmaps=False).table
    assert together.iloc[3].equals(alone.iloc[0])


def test_the_cam_pass_gives_the_maps_and_the_same_scores():
    detector = _detector("single")
    photos = _photos(5, seed=3)
    with_maps = detector.predict(photos, heatmaps=True)
    assert with_maps.heatmaps.shape == (5, SIZE, SIZE)
    assert with_maps.heatmaps.min() >= 0 and with_maps.heatmaps.max() <= 1
    without = detector.predict(photos, heatmaps=False)
    np.testing.assert_array_equal(with_maps.table.to_numpy(), without.table.to_numpy())


def test_a_segmentation_head_gives_the_map_score_and_its_map():
    detector = _detector("dihedral", segmentation=True)
    photos = _photos(3, seed=4)
    result = detector.predict(photos, heatmaps=True)
    assert "map" in result.table and result.heatmaps.shape == (3, SIZE, SIZE)
    # One backbone pass gives the embedding and the map score: the same bits as the map's own
    # pass (anomaly_map), view by view.
    with torch.inference_mode():
        images = normalize(_resized(photos))
        views = VIEWS["dihedral"].of(images)
        own = torch.stack([map_image_score(detector.model.anomaly_map(v)) for v in views])
    expected = np.asarray(own.mean(dim=0).numpy(), dtype=np.float64).round(6)
    np.testing.assert_array_equal(result.table["map"], expected)


@pytest.mark.parametrize(("views", "count"), [("single", 1), ("dihedral", 8)])
def test_the_scoring_net_computes_what_the_detector_does(views, count):
    detector = _detector(views)
    net = ScoringNet(detector.model, detector.head, views)
    photos = _photos(4, seed=5)
    with torch.no_grad():
        outputs = net(_resized(photos))
    names = output_names(detector.head)
    assert len(outputs) == len(names) and names[0] == "embedding"
    assert outputs[0].shape == (4, count, 8)
    table = detector.predict(photos, heatmaps=False).table
    for name, output in zip(names[1:-2], outputs[1:-2], strict=True):
        np.testing.assert_allclose(output.numpy(), table[name.removeprefix("score_")], rtol=1e-5)
    np.testing.assert_array_equal(outputs[-1].numpy(), table["anomalous"])
