"""The patch memory (model.patch_memory): its distances against a brute-force search, its
scale, the checkpoint that carries its bank, and its score and map through the scoring head,
predict, the exported module and the ONNX file."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from metricad.errors import MetricadError
from metricad.export import export_onnx
from metricad.model.checkpoint import read_checkpoint, save_checkpoint
from metricad.model.inference import embed_and_score, fit_patch_memory, network_maps
from metricad.model.patch_memory import REACH, PatchMemory
from metricad.model.torch_model import build_model
from metricad.params import ScoreParams, params_from_dict
from metricad.scoring.head import ScoringHead
from metricad.serving.detector import Detector
from metricad.serving.scoring_net import ScoringNet, output_names

SIZE, BATCH = 32, 4
CAM = ("gradcam++", "layer2", "anomalous")


def _brute_force(bank: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """(N, h, w): nearest bank vector (B, C, h, w) within REACH of each query position."""
    count, _, height, width = queries.shape
    best = torch.full((count, height, width), float("inf"))
    shifts = range(-REACH, REACH + 1)
    for n, y, x, dy, dx in itertools.product(
        range(count), range(height), range(width), shifts, shifts
    ):
        if 0 <= y + dy < height and 0 <= x + dx < width:
            squared = (queries[n, :, y, x] - bank[:, :, y + dy, x + dx]).square().sum(1).min()
            best[n, y, x] = torch.minimum(best[n, y, x], squared)
    return best.sqrt()


def _memory(bank: torch.Tensor) -> PatchMemory:
    memory = PatchMemory()
    memory.fit(bank)
    return memory


def _left_out(bank: torch.Tensor) -> torch.Tensor:
    """(N, h, w): each bank image's brute-force distances to the others."""
    others = [[j for j in range(len(bank)) if j != i] for i in range(len(bank))]
    return torch.cat([_brute_force(bank[rest], bank[i : i + 1]) for i, rest in enumerate(others)])


def test_the_distance_is_the_nearest_bank_vector_within_reach_in_the_positions_unit():
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(5, 192, 6, 5, generator=generator).half().float()
    queries = torch.randn(3, 192, 6, 5, generator=generator)
    memory = _memory(bank)
    spread = _left_out(bank).amax(0)
    unit = (spread * spread.flatten().median()).sqrt()
    torch.testing.assert_close(memory.unit, unit.flatten(), atol=2e-5, rtol=1e-5)
    found = memory.distances(queries)
    torch.testing.assert_close(found, _brute_force(bank, queries) / unit, atol=2e-5, rtol=1e-5)
    # A training image meets itself: distance 0 everywhere, up to the float32 cancellation of
    # |q|^2 + |b|^2 - 2 q.b (|q|^2 about 192 here), far below the distance between images.
    assert memory.distances(bank).max() < 0.05 < found.min()


def test_a_position_where_good_images_differ_counts_less():
    generator = torch.Generator().manual_seed(2)
    bank = torch.randn(6, 192, 3, 3, generator=generator) * 0.1
    bank[:, :, 0, 0] *= 10.0  # the good images vary ten times as much at one corner
    query = torch.zeros(1, 192, 3, 3)
    query[:, :, 0, 0] = query[:, :, 2, 2] = 3.0  # the same change at that corner and another
    found = _memory(bank.half().float()).distances(query)[0]
    assert found[0, 0] < found[2, 2] / 2


def test_the_scale_is_the_most_unusual_good_image_left_out():
    generator = torch.Generator().manual_seed(1)
    bank = torch.randn(4, 192, 4, 4, generator=generator).half().float()
    memory = _memory(bank)
    left_out = _left_out(bank)
    spread = left_out.amax(0)
    unit = (spread * spread.flatten().median()).sqrt()
    expected = (left_out / unit).amax()
    torch.testing.assert_close(memory.scale, expected, atol=1e-4, rtol=1e-5)
    heat = memory.heat_map(memory.distances(bank[:1] + 10.0), (16, 16))
    assert heat.shape == (1, 16, 16) and float(heat.min()) == 1.0  # far: saturated
    empty = PatchMemory().distances(bank)
    assert torch.isnan(empty).all()


def _trained_like(patch: bool = True) -> tuple[torch.nn.Module, torch.Tensor]:
    """A random network (its patch memory fitted on 8 images) and 6 other images."""
    torch.manual_seed(0)
    model = build_model(SIZE, embedding_dim=8, patch_memory=patch).eval()
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (14, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    fit_patch_memory(model, images[:8], BATCH, torch.device("cpu"))
    return model, images[8:]


def test_the_checkpoint_carries_the_bank(tmp_path):
    model, _ = _trained_like()
    params = params_from_dict(
        {"resize": {"size": SIZE}, "model": {"patch_memory": True, "embedding_dim": 8}}
    )
    save_checkpoint(tmp_path / "model.pt", model, params)
    loaded, _ = read_checkpoint(tmp_path / "model.pt")
    assert loaded.patches.bank.shape == (8 * 8, 192, 8)  # (h*w, C, images) at 32 px
    torch.testing.assert_close(loaded.patches.bank, model.patches.bank, atol=0, rtol=0)
    torch.testing.assert_close(loaded.patches.unit, model.patches.unit, atol=0, rtol=0)
    assert float(loaded.patches.scale) == float(model.patches.scale) > 0


def test_a_checkpoint_from_before_the_unit_reads_with_the_unit_1(tmp_path):
    model, images = _trained_like()
    params = params_from_dict(
        {"resize": {"size": SIZE}, "model": {"patch_memory": True, "embedding_dim": 8}}
    )
    save_checkpoint(tmp_path / "model.pt", model, params)
    checkpoint = torch.load(tmp_path / "model.pt", weights_only=True)
    del checkpoint["state_dict"]["patches.unit"]
    torch.save(checkpoint, tmp_path / "old.pt")
    loaded, _ = read_checkpoint(tmp_path / "old.pt")
    assert torch.equal(loaded.patches.unit, torch.ones(8 * 8))


def test_the_patch_score_needs_the_memory():
    with pytest.raises(MetricadError, match="lists 'patch'.*but model.patch_memory is false"):
        params_from_dict({"score": {"scores": ["knn", "patch"], "verdict_score": "patch"}})


def test_the_patch_score_and_map_reach_the_head_predict_and_the_exported_module():
    model, images = _trained_like()
    embeddings, probabilities, own = embed_and_score(
        model, images, BATCH, torch.device("cpu"), False
    )
    assert set(own) == {"patch"}
    head = ScoringHead(["knn", "patch"], "patch")
    head.fit_scores(embeddings)
    prob = torch.zeros(len(images), dtype=torch.float64)
    values = head.score_values(
        torch.from_numpy(embeddings), prob, {"patch": torch.from_numpy(own["patch"])}
    )
    np.testing.assert_array_equal(values[:, 1].numpy(), own["patch"])
    head.set_operating_points(values, ScoreParams())

    detector = Detector(model, head, CAM, torch.device("cpu"), BATCH)
    assert detector.own_map() == "patch"
    pixels = [image.permute(1, 2, 0).numpy() for image in images]
    result = detector.predict(pixels)
    np.testing.assert_array_equal(result.table["patch"].to_numpy(), own["patch"])
    maps = network_maps(model, images, BATCH, torch.device("cpu"))
    assert set(maps) == {"patch"}
    np.testing.assert_array_equal(result.heatmaps, maps["patch"])
    assert result.heatmaps.min() >= 0 and result.heatmaps.max() <= 1

    net = ScoringNet(model, head).eval()
    with torch.no_grad():
        outputs = dict(zip(output_names(head), net(images), strict=True))
    torch.testing.assert_close(
        outputs["score_patch"], torch.from_numpy(own["patch"]), atol=1e-5, rtol=0
    )


def test_the_onnx_file_carries_the_patch_score(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, images = _trained_like()
    embeddings, _, own = embed_and_score(model, images, BATCH, torch.device("cpu"), False)
    head = ScoringHead(["knn", "patch"], "patch")
    head.fit_scores(embeddings)
    detector = Detector(model, head, CAM, torch.device("cpu"), BATCH)
    export_onnx(detector, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    ran = session.run(None, {"image": images.numpy()})
    outputs = dict(zip(output_names(head), ran, strict=True))
    np.testing.assert_allclose(outputs["score_patch"], own["patch"], atol=1e-4)
