"""The network and its heads: shapes, and the binary AdaCos head that must learn."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metricad.data.batches import augment
from metricad.model.heads.adacos import AdaCos, AdaCosSettings
from metricad.model.heads.arcface import ArcFace, ArcFaceSettings
from metricad.model.inference import embed_and_score
from metricad.model.torch_model import (
    ChannelDropout,
    arch_from_params,
    build_model,
    model_from_arch,
)
from metricad.model.views import view_probabilities
from metricad.model.views.dihedral import dihedral_views
from metricad.params import params_from_dict


def test_embedding_is_512_d_and_logits_two_classes():
    torch.manual_seed(0)
    model = build_model(input_size=64).eval()
    images = torch.randn(3, 3, 64, 64)
    assert model.embed(images).shape == (3, 512)
    assert model(images).shape == (3, 2)


def _blobs(count: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(count) % 2
    centres = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 1.0]])
    points = centres[labels] + 0.5 * torch.randn(count, 4, generator=generator)
    return points, labels


def _fit(head: torch.nn.Module, steps: int = 150) -> tuple[float, float, float]:
    """Train a linear embedding + head on two blobs; return first loss, last loss, accuracy."""
    torch.manual_seed(0)
    points, labels = _blobs()
    embed = torch.nn.Linear(4, 8)
    optimizer = torch.optim.Adam([*embed.parameters(), *head.parameters()], lr=0.05)
    head.train()
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(head(embed(points), labels), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    head.eval()
    accuracy = (head(embed(points)).argmax(1) == labels).float().mean().item()
    return losses[0], losses[-1], accuracy


def test_textbook_adacos_scale_is_zero_for_two_classes_and_never_learns():
    head = AdaCos(8, 2, AdaCosSettings(min_scale=0.0))
    assert float(head.scale.detach()) == 0.0
    first, last, _ = _fit(head)
    # Zero scale means zero logits: the loss stays at ln 2 whatever the embedding does.
    assert first == pytest.approx(math.log(2), abs=1e-6)
    assert last == pytest.approx(math.log(2), abs=1e-6)


def test_binary_adacos_head_learns():
    head = AdaCos(8, 2, AdaCosSettings())
    assert float(head.scale.detach()) >= 10.0
    first, last, accuracy = _fit(head)
    assert last < 0.1 * first
    assert accuracy == 1.0


def test_adacos_keeps_textbook_scale_for_many_classes():
    head = AdaCos(8, 10, AdaCosSettings(min_scale=0.0))
    assert float(head.scale.detach()) == pytest.approx(math.sqrt(2) * math.log(9))


def test_a_heads_own_settings_travel_from_params_through_the_checkpoint_record():
    params = params_from_dict(
        {"resize": {"size": 32}, "model": {"head": "arcface", "arcface": {"margin": 0.2}}}
    )
    assert params.model.arcface == ArcFaceSettings(scale=30.0, margin=0.2)
    arch = arch_from_params(params)
    assert (arch["arcface_margin"], arch["adacos_min_scale"]) == (0.2, 10.0)
    head = model_from_arch(arch).head
    assert isinstance(head, ArcFace) and head.margin == 0.2 and float(head.scale) == 30.0


def test_arcface_head_learns_and_adds_margin_only_in_training():
    head = ArcFace(8, 2, ArcFaceSettings(scale=10.0, margin=0.3))
    _, _, accuracy = _fit(head)
    assert accuracy == 1.0
    embeddings, labels = torch.randn(4, 8), torch.tensor([0, 1, 0, 1])
    head.eval()
    plain = head(embeddings, labels)
    head.train()
    with_margin = head(embeddings, labels)
    target = F.one_hot(labels, 2).bool()
    assert torch.all(with_margin[target] < plain[target])
    assert torch.allclose(with_margin[~target], plain[~target])


def test_the_kernel_free_rewrites_compute_the_textbook_formulas():
    """AdaCos's update without exp/log/acos/cos, ArcFace's margin without acos and the
    cosines without F.linear (CPU-dependent kernels) agree with the textbook to rounding."""
    torch.manual_seed(0)
    head = AdaCos(16, 2, AdaCosSettings())
    embeddings, labels = torch.randn(12, 16), torch.arange(12) % 2
    cosines = head.cosines(embeddings)
    textbook = F.linear(F.normalize(embeddings), F.normalize(head.weight)).clamp(-1, 1)
    torch.testing.assert_close(cosines, textbook)
    for scale in (10.0, 25.0, 40.0):
        head.scale.fill_(scale)
        one_hot = F.one_hot(labels, 2).bool()
        b_avg = torch.where(one_hot, 0.0, torch.exp(scale * cosines)).sum(dim=1).mean()
        theta_med = torch.acos(cosines[one_hot]).median()
        expected = torch.log(b_avg) / torch.cos(torch.clamp(theta_med, max=math.pi / 4))
        head.min_scale = -100.0  # unclamped, to compare the formula itself
        head._update_scale(cosines, labels)
        assert float(head.scale.detach()) == pytest.approx(
            float(expected.detach().clamp(max=64.0)), rel=1e-5
        )
    arcface = ArcFace(16, 2, ArcFaceSettings(scale=1.0, margin=0.5)).train()
    theta = torch.acos(arcface.cosines(embeddings).clamp(-1 + 1e-7, 1 - 1e-7))
    expected = torch.where(
        F.one_hot(labels, 2).bool(),
        torch.cos(torch.clamp(theta + 0.5, max=math.pi)),
        arcface.cosines(embeddings),
    )
    torch.testing.assert_close(arcface(embeddings, labels), expected, atol=1e-5, rtol=1e-5)


def test_channel_dropout_drops_whole_channels_in_training_only():
    torch.manual_seed(0)
    dropout = ChannelDropout(0.5)
    x = torch.ones(64, 32, 3, 3)
    dropped = dropout.train()(x)
    per_channel = dropped.flatten(2)
    assert ((per_channel == 0).all(2) | (per_channel == 2.0).all(2)).all()
    assert 0.4 < (per_channel[..., 0] == 0).float().mean() < 0.6
    assert torch.equal(dropout.eval()(x), x)


def test_an_image_gets_the_same_embedding_in_any_batch():
    """Every eval batch is padded to the batch size: the matrix kernels choose their code by
    the shape, so one shape gives an image the same bits whatever its neighbours and count."""
    torch.manual_seed(0)
    model = build_model(input_size=32, embedding_dim=16).eval()
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    whole, _, _ = embed_and_score(model, images, 8, torch.device("cpu"), progress=False)
    order = torch.randperm(20)
    shuffled, _, _ = embed_and_score(model, images[order], 8, torch.device("cpu"), False)
    assert np.array_equal(shuffled, whole[order.numpy()])
    for count in (1, 3, 11):
        part, _, _ = embed_and_score(model, images[-count:], 8, torch.device("cpu"), False)
        assert np.array_equal(part, whole[-count:]), count


def test_every_flip_and_turn_of_an_image_has_the_same_dihedral_views():
    torch.manual_seed(0)
    model = build_model(input_size=32, embedding_dim=16).eval()
    images = torch.randn(3, 3, 32, 32)
    views = dihedral_views(images)
    # The eight views are the eight different ones training draws (data/batches.py: augment).
    assert len({v.numpy().tobytes() for v in views}) == 8
    drawn = augment(images[:1].repeat(64, 1, 1, 1), torch.Generator().manual_seed(0))
    assert {v.numpy().tobytes() for v in drawn} == {v[:1].numpy().tobytes() for v in views}
    with torch.no_grad():
        embedded = model.embed_and_scores(images, "dihedral")[0]
        assert embedded.shape == (3, 8, 16)
        # single: the network's own embedding (one view), the identity view of dihedral.
        single = model.embed_and_scores(images, "single")[0]
        assert single.shape == (3, 1, 16)
        np.testing.assert_array_equal(single[:, 0], model.embed(images))
        np.testing.assert_array_equal(embedded[:, 0], model.embed(images))
        ordered = embedded.sort(dim=1).values
        for view in views[1:]:
            turned = model.embed_and_scores(view, "dihedral")[0]
            np.testing.assert_allclose(turned.sort(dim=1).values, ordered, atol=1e-5)
            assert not torch.allclose(turned[:, 0], embedded[:, 0], atol=1e-3)
        probabilities = view_probabilities(model, embedded)
        expected = torch.softmax(model.head(embedded.flatten(0, 1)), 1).view(3, 8, 2).mean(1)
        np.testing.assert_allclose(probabilities, expected, atol=1e-7)


def test_a_standardizing_network_sees_no_change_of_lighting_but_sees_a_scratch():
    """model.standardize: the same photo brighter and with less contrast (an affine change of
    each channel) gives the same embedding and map; a dark line across it does not."""
    torch.manual_seed(0)
    model = build_model(input_size=32, embedding_dim=16, segmentation=True, standardize=True)
    model.eval()
    images = torch.rand(4, 3, 32, 32)
    relit = 0.7 * images + 0.2
    scratched = images.clone()
    scratched[:, :, 16, 4:28] = 0.0
    with torch.no_grad():
        embedding, relit_embedding = model.embed(images), model.embed(relit)
        assert torch.allclose(relit_embedding, embedding, atol=1e-3)
        assert torch.allclose(model.anomaly_map(relit), model.anomaly_map(images), atol=1e-3)
        assert (model.embed(scratched) - embedding).abs().max() > 1e-2
        plain = build_model(input_size=32, embedding_dim=16).eval()
        plain.load_state_dict(model.state_dict(), strict=False)
        assert (plain.embed(relit) - plain.embed(images)).abs().max() > 1e-2
