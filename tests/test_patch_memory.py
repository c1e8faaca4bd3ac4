"""The patch memory (model.patch_memory): its distances against a brute-force search, its
scale, the checkpoint that carries its bank, and its score and map through the scoring head,
predict, the exported module and the ONNX file."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from metricad.data.batches import normalize
from metricad.errors import MetricadError
from metricad.export import export_onnx
from metricad.model.checkpoint import read_checkpoint, save_checkpoint
from metricad.model.inference import embed_and_score, fit_patch_memory, network_maps, softmax_score
from metricad.model.patch_memory import REACH, PatchMemory
from metricad.model.resume import resume_fingerprint
from metricad.model.torch_model import arch_from_params, build_model
from metricad.model.views import VIEWS
from metricad.model.views.dihedral import dihedral_back, dihedral_views
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
    memory.fit([bank])
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
    torch.testing.assert_close(memory.unit[0], unit.flatten(), atol=2e-5, rtol=1e-5)
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


def _images() -> torch.Tensor:
    """14 random uint8 images: the first 8 the good training images of _trained_like."""
    generator = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (14, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)


def _trained_like(views: str = "single") -> tuple[torch.nn.Module, torch.Tensor]:
    """A random network (its patch memory of `views` fitted on 8 images) and 6 other images."""
    torch.manual_seed(0)
    model = build_model(SIZE, embedding_dim=8, patch_memory=True, patch_views=views).eval()
    images = _images()
    fit_patch_memory(model, images[:8], BATCH, torch.device("cpu"))
    return model, images[8:]


def _saved(tmp_path, views: str = "single") -> tuple[torch.nn.Module, torch.Tensor]:
    """_trained_like's network and images, the network saved to tmp_path/model.pt."""
    model, images = _trained_like(views)
    settings = {"patch_memory": True, "embedding_dim": 8, "patch_views": views}
    params = params_from_dict({"resize": {"size": SIZE}, "model": settings})
    save_checkpoint(tmp_path / "model.pt", model, params, "whole")
    return model, images


def test_a_checkpoint_from_before_the_unit_reads_with_the_unit_1(tmp_path):
    _saved(tmp_path)
    checkpoint = torch.load(tmp_path / "model.pt", weights_only=True)
    del checkpoint["state_dict"]["patches.unit"]
    torch.save(checkpoint, tmp_path / "old.pt")
    loaded, _ = read_checkpoint(tmp_path / "old.pt")
    assert torch.equal(loaded.patches.unit, torch.ones(1, 8 * 8))


def test_the_patch_score_needs_the_memory():
    with pytest.raises(MetricadError, match="lists 'patch'.*but model.patch_memory is false"):
        params_from_dict({"score": {"scores": ["knn", "patch"], "verdict_score": "patch"}})


@pytest.mark.parametrize("views", ["single", "dihedral"])
def test_the_patch_score_and_map_reach_the_head_predict_and_the_exported_module(views):
    model, images = _trained_like(views)
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


@pytest.mark.slow
def test_the_onnx_file_carries_the_8_views_of_the_embedding_and_of_the_patch_score(tmp_path):
    """The ONNX file of a detector that embeds 8 views (embed.views: dihedral) with a memory of
    8 views: each view's embedding, the kNN score over them, the patch score."""
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, images = _trained_like("dihedral")
    cpu = torch.device("cpu")
    embeddings, probabilities, own = embed_and_score(
        model, images, BATCH, cpu, False, views="dihedral"
    )
    head = ScoringHead(["knn", "patch"], "patch")
    head.fit_scores(embeddings)
    expected = head.score_values(
        torch.from_numpy(embeddings),
        torch.from_numpy(softmax_score(probabilities)),
        {"patch": torch.from_numpy(own["patch"])},
    )
    detector = Detector(model, head, CAM, cpu, BATCH, views="dihedral")
    export_onnx(detector, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    ran = session.run(None, {"image": images.numpy()})
    outputs = dict(zip(output_names(head), ran, strict=True))
    assert outputs["embedding"].shape == embeddings.shape  # N x 8 x D
    np.testing.assert_allclose(outputs["embedding"], embeddings, atol=1e-4)
    np.testing.assert_allclose(
        outputs["score_knn"], expected[:, head.names.index("knn")], rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(outputs["score_patch"], own["patch"], atol=1e-4)


def test_each_view_turned_back_is_the_image_again():
    maps = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 5, 5)
    views = dihedral_views(maps[:, None])
    for view, turned in enumerate(views):
        assert torch.equal(dihedral_back(turned[:, 0], view), maps), view


def test_a_memory_of_the_8_views_averages_each_views_own_distances_turned_back():
    """model.patch_views dihedral: view k of an image meets a bank of view k of the good
    images, and the maps, each turned back, are averaged; its unit, scale and score follow."""
    model, images = _trained_like(views="dihedral")
    good = _images()[:8]
    x, maps, left_out = normalize(images), [], []
    with torch.no_grad():
        for view, (good_view, test_view) in enumerate(
            zip(dihedral_views(normalize(good)), dihedral_views(x), strict=True)
        ):
            memory = PatchMemory()
            memory.fit([model.patch_vectors(good_view)])
            torch.testing.assert_close(memory.unit[0], model.patches.unit[view], atol=0, rtol=0)
            own = memory.distances(model.patch_vectors(test_view))
            maps.append(dihedral_back(own, view))
            good_maps = memory.left_out_distances(model.patch_vectors(good_view))
            left_out.append(dihedral_back(good_maps, view))
        expected = torch.stack(maps).mean(0)
        assert model.patches.bank.shape[0] == 8
        torch.testing.assert_close(model.patch_distances(x), expected, atol=1e-5, rtol=1e-5)
        scale = torch.stack(left_out).mean(0).amax()
        torch.testing.assert_close(model.patches.scale, scale, atol=1e-5, rtol=1e-5)
        # Not one view's map: each view differs from the mean.
        assert all(not torch.allclose(m, expected, atol=1e-3) for m in maps)
    _, _, own = embed_and_score(model, images, BATCH, torch.device("cpu"), False)
    np.testing.assert_allclose(own["patch"], expected.flatten(1).amax(1).numpy(), atol=1e-5)
    heat = network_maps(model, images, BATCH, torch.device("cpu"))["patch"]
    assert heat.shape == (len(images), SIZE, SIZE)


def test_patch_views_auto_is_dihedral_where_training_flips_and_turns():
    def resolved(framing: str, augment: object, views: str = "auto") -> str:
        params = params_from_dict(
            {"train": {"augment": augment}, "model": {"patch_memory": True, "patch_views": views}}
        )
        return arch_from_params(params, framing)["patch_views"]

    assert resolved("whole", "auto") == "dihedral" and resolved("whole", True) == "dihedral"
    assert resolved("object_band", "auto") == "single" and resolved("whole", False) == "single"
    assert resolved("object_band", "auto", "dihedral") == "dihedral"
    with pytest.raises(MetricadError, match="model.patch_views must be one of"):
        params_from_dict({"model": {"patch_views": "flips"}})


def test_the_memorys_views_do_not_restart_a_finished_training():
    """The banks are fitted after training: another model.patch_views continues the state."""
    images = torch.zeros(4, 3, SIZE, SIZE, dtype=torch.uint8)
    labels = torch.zeros(4, dtype=torch.long)

    def fingerprint(views: str) -> str:
        params = params_from_dict({"model": {"patch_memory": True, "patch_views": views}})
        return resume_fingerprint(params, images, labels)

    assert fingerprint("single") == fingerprint("dihedral")


@pytest.mark.parametrize("views", ["single", "dihedral"])
def test_the_checkpoint_carries_each_views_bank(tmp_path, views):
    model, images = _saved(tmp_path, views)
    loaded, _ = read_checkpoint(tmp_path / "model.pt")
    assert loaded.patches.view_set == views
    # (views, h*w, C, images) at 32 px
    assert loaded.patches.bank.shape == (VIEWS[views].count, 8 * 8, 192, 8)
    torch.testing.assert_close(loaded.patches.bank, model.patches.bank, atol=0, rtol=0)
    torch.testing.assert_close(loaded.patches.unit, model.patches.unit, atol=0, rtol=0)
    assert float(loaded.patches.scale) == float(model.patches.scale) > 0
    x = normalize(images)
    with torch.no_grad():
        assert torch.equal(loaded.patch_distances(x), model.patch_distances(x))


def test_a_checkpoint_from_before_the_views_reads_as_one_view(tmp_path):
    model, images = _saved(tmp_path)
    checkpoint = torch.load(tmp_path / "model.pt", weights_only=True)
    state = checkpoint["state_dict"]
    for key in ("patches.bank", "patches.unit"):
        state[key] = state[key][0]
    del checkpoint["arch"]["patch_views"]
    torch.save(checkpoint, tmp_path / "old.pt")
    loaded, _ = read_checkpoint(tmp_path / "old.pt")
    x = normalize(images)
    with torch.no_grad():
        assert torch.equal(loaded.patch_distances(x), model.patch_distances(x))
