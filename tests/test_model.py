"""The network and its heads: shapes, and the binary AdaCos head that must learn."""

import math

import pytest
import torch
import torch.nn.functional as F

from metricad.torch_model import AdaCos, ArcFace, build_model


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
    head = AdaCos(8, 2, min_scale=0.0)
    assert float(head.scale) == 0.0
    first, last, _ = _fit(head)
    # Zero scale means zero logits: the loss stays at ln 2 whatever the embedding does.
    assert first == pytest.approx(math.log(2), abs=1e-6)
    assert last == pytest.approx(math.log(2), abs=1e-6)


def test_binary_adacos_head_learns():
    head = AdaCos(8, 2)
    assert float(head.scale) >= 10.0
    first, last, accuracy = _fit(head)
    assert last < 0.1 * first
    assert accuracy == 1.0


def test_adacos_keeps_textbook_scale_for_many_classes():
    head = AdaCos(8, 10, min_scale=0.0)
    assert float(head.scale) == pytest.approx(math.sqrt(2) * math.log(9))


def test_arcface_head_learns_and_adds_margin_only_in_training():
    head = ArcFace(8, 2, scale=10.0, margin=0.3)
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
