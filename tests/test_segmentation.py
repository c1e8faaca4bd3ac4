"""The segmentation head (model.segmentation): its map, its loss on the synthetic masks, its
image score (`map`) through the scoring head, predict and the exported module; and the
photometric augmentation that trains it for a line's lighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metricad.analysis.pixel_metrics import pixel_auroc
from metricad.data.anomalies import synthetic_sample
from metricad.data.batches import normalize, photometric
from metricad.errors import MetricadError
from metricad.export import export_onnx
from metricad.model.inference import embed_and_score, network_maps, softmax_score
from metricad.model.recipe import segmentation_loss
from metricad.model.segmentation import map_image_score
from metricad.model.torch_model import build_model
from metricad.model.training import train
from metricad.params import ScoreParams, params_from_dict
from metricad.scoring.head import ScoringHead
from metricad.serving.detector import Detector
from metricad.serving.scoring_net import ScoringNet, output_names

SIZE = 64


def _objects(count: int, seed: int = 0) -> torch.Tensor:
    """Discs of a fine random texture on an even light background: photos of one part."""
    generator = torch.Generator().manual_seed(seed)
    axis = torch.arange(SIZE) - SIZE / 2 + 0.5
    disc = axis[:, None] ** 2 + axis[None, :] ** 2 < (SIZE * 0.35) ** 2
    images = torch.full((count, 3, SIZE, SIZE), 210, dtype=torch.uint8)
    grain = torch.randint(60, 90, (count, 1, SIZE, SIZE), generator=generator, dtype=torch.uint8)
    images[:, :, disc] = grain.expand(-1, 3, -1, -1)[:, :, disc]
    return images


def test_the_head_maps_every_pixel_and_only_a_network_with_it_has_a_map():
    torch.manual_seed(0)
    model = build_model(SIZE, segmentation=True).eval()
    images = normalize(_objects(3))
    logits, map_logits = model.forward_with_map(images)
    assert logits.shape == (3, 2) and map_logits.shape == (3, SIZE // 4, SIZE // 4)
    maps = model.anomaly_map(images)
    assert maps.shape == (3, SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1
    assert torch.equal(model(images), logits)  # the same logits with or without the map
    plain = build_model(SIZE).eval()
    assert plain.segmenter is None and not any("segmenter" in k for k in plain.state_dict())
    with pytest.raises(ValueError, match="no segmentation head"):
        plain.anomaly_map(images)


def test_the_loss_is_the_focal_loss_of_the_pooled_masks_without_real_defects():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 8, 8, generator=generator)
    masks = torch.zeros(4, 32, 32, dtype=torch.bool)
    masks[1, 4:20, 8:12] = True
    masks[3, :, :] = True
    real = torch.tensor([False, False, True, False])
    target = (F.avg_pool2d(masks[:, None].float(), 4)[:, 0] > 0.25).float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    focal = bce * (1 - (p * target + (1 - p) * (1 - target))) ** 2
    expected = focal[~real].mean()
    torch.testing.assert_close(segmentation_loss(logits, masks, real), expected)


def test_the_image_score_wants_a_blob_not_a_hot_pixel():
    maps = torch.zeros(2, SIZE, SIZE)
    maps[0, 10, 10] = 1.0
    maps[1, 20:30, 20:30] = 0.5
    single, blob = map_image_score(maps).tolist()
    assert blob == pytest.approx(0.5) and single < 0.1


def test_photometric_changes_lighting_within_its_range_and_is_seeded():
    images = _objects(6)
    first = photometric(images, 0.3, torch.Generator().manual_seed(1))
    again = photometric(images, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and first.dtype == torch.uint8
    assert not torch.equal(first, images)
    ratio = first.float().mean(dim=(1, 2, 3)) / images.float().mean(dim=(1, 2, 3))
    assert (ratio > 0.3).all() and (ratio < 1.9).all()
    same = photometric(images, 0.0, torch.Generator().manual_seed(1))
    assert (same.int() - images.int()).abs().max() <= 1


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, torch.Tensor]:
    """A segmentation network trained briefly on Perlin anomalies of the discs."""
    params = params_from_dict(
        {
            "resize": {"size": SIZE},
            "model": {"segmentation": True},
            "train": {
                "synthetic_anomalies": "perlin",
                "synthetic_jitter": 0.5,
                "photometric": 0.1,
                "warmup_epochs": 1,
                "ema_decay": 0,
                "batch_size": 8,
            },
        }
    )
    torch.manual_seed(0)
    model = build_model(SIZE, segmentation=True)
    images = _objects(32)
    train(model, images, torch.zeros(32, dtype=torch.long), params.train, 15, torch.device("cpu"))
    return model.eval(), images


def test_trained_on_synthetic_masks_the_map_finds_new_anomalies(trained):
    model, images = trained
    anomalies, masks, _, _ = synthetic_sample(_objects(12, seed=5), 12, "perlin", 0.5, seed=9)
    maps = network_maps(model, anomalies, 16, torch.device("cpu"))["segmentation"]
    measured = pixel_auroc(maps, masks.numpy())
    print(f"pixel AUROC on new synthetic anomalies: {measured:.3f}")
    assert measured > 0.75
    good, bad = (
        embed_and_score(model, batch, 16, torch.device("cpu"), progress=False).network_scores["map"]
        for batch in (_objects(12, seed=5), anomalies)
    )
    assert np.mean(bad) > np.mean(good)


def test_the_map_score_reaches_the_head_predict_and_the_exported_module(trained):
    model, images = trained
    embeddings, probabilities, own = embed_and_score(model, images, 16, torch.device("cpu"), False)
    scores = own["map"]
    head = ScoringHead(["gaussian", "map"], "map")
    head.fit_scores(embeddings)
    prob = torch.from_numpy(softmax_score(probabilities))
    values = head.score_values(
        torch.from_numpy(embeddings), prob, {"map": torch.from_numpy(scores)}
    )
    np.testing.assert_array_equal(values[:, 1].numpy(), scores)
    assert torch.isnan(head.score_values(torch.from_numpy(embeddings), prob)[:, 1]).all()
    head.set_operating_points(values, ScoreParams())

    detector = Detector(model, head, ("gradcam++", "layer2", "anomalous"), torch.device("cpu"), 16)
    pixels = [image.permute(1, 2, 0).numpy() for image in images[:5]]
    result = detector.predict(pixels)
    np.testing.assert_array_equal(result.table["map"].to_numpy(), scores[:5])
    expected = network_maps(model, images[:5], 16, torch.device("cpu"))["segmentation"]
    np.testing.assert_array_equal(result.heatmaps, expected)

    net = ScoringNet(model, head).eval()
    with torch.no_grad():
        outputs = dict(zip(output_names(head), net(images[:5]), strict=True))
    torch.testing.assert_close(
        outputs["score_map"], torch.from_numpy(scores[:5]), atol=2e-6, rtol=0
    )


def test_the_map_score_needs_the_head():
    with pytest.raises(MetricadError, match="lists 'map'.*but model.segmentation is false"):
        params_from_dict({"score": {"scores": ["knn", "map"], "verdict_score": "knn"}})
    params_from_dict(
        {
            "model": {"segmentation": True},
            "score": {"scores": ["knn", "map"], "verdict_score": "map"},
        }
    )


def test_the_onnx_file_carries_the_map_score(trained, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, images = trained
    embeddings, _, own = embed_and_score(model, images, 16, torch.device("cpu"), False)
    scores = own["map"]
    head = ScoringHead(["knn", "map"], "map")
    head.fit_scores(embeddings)
    detector = Detector(model, head, ("gradcam++", "layer2", "anomalous"), torch.device("cpu"), 16)
    export_onnx(detector, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    assert [output.name for output in session.get_outputs()] == output_names(head)
    ran = session.run(None, {"image": images[:6].numpy()})
    outputs = dict(zip(output_names(head), ran, strict=True))
    np.testing.assert_allclose(outputs["score_map"], scores[:6], atol=5e-6)
