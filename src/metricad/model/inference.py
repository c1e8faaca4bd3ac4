"""Eval-mode passes over a set of images: embeddings and class probabilities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from metricad.data.batches import eval_batches, normalize
from metricad.model.torch_model import AnomalyNet
from metricad.model.views import VIEWS, view_probabilities
from metricad.runtime import memory_format_for


def _normalized_batches(
    model: AnomalyNet,
    images: torch.Tensor,
    batch_size: int,
    device: torch.device,
    label: str | None,
) -> Iterator[tuple[torch.Tensor, int]]:
    """The model in eval mode on `device`; each padded batch of uint8 `images` normalised
    there, with its number of real rows (`label`: a progress bar)."""
    model.to(device=device, memory_format=memory_format_for(device)).eval()
    for batch, count in eval_batches(images, batch_size, label):
        yield normalize(batch.to(device)), count


def _autocast(device: torch.device, amp: bool) -> torch.autocast:
    """bfloat16 autocast on CUDA when `amp`; off on the CPU."""
    return torch.autocast(device.type, torch.bfloat16, enabled=amp and device.type == "cuda")


class Embedded(NamedTuple):
    """What an eval pass gives for each image: its views' embeddings (N, V, D) float32, the
    views' mean softmax probability of each class (N, C) float32, and the network's own image
    scores by name (N,) float64 rounded to 6 decimals as the pipeline stores them (see
    softmax_score): `map` with a segmentation head, `patch` with a patch memory."""

    embeddings: np.ndarray
    probabilities: np.ndarray
    network_scores: dict[str, np.ndarray]


@torch.inference_mode()
def embed_and_score(
    model: AnomalyNet,
    images: torch.Tensor,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
    amp: bool = False,
    views: str = "single",
) -> Embedded:
    """Every view's embedding, the class probabilities and the network's own scores of each
    uint8 image (model/views/), one backbone pass per view, in eval mode. `amp`: bfloat16
    autocast on CUDA (ignored on the CPU); the results are float32 (the own scores float64).
    """
    embeddings, probabilities, own = [], [], {}
    label = "embed" if progress else None
    for x, count in _normalized_batches(model, images, batch_size, device, label):
        with _autocast(device, amp):
            embedding, scores = model.embed_and_scores(x, views)
        embedding = embedding.float()
        probabilities.append(view_probabilities(model, embedding)[:count].cpu())
        embeddings.append(embedding[:count].cpu())
        for name, score in scores.items():
            own.setdefault(name, []).append(score.float()[:count].cpu())
    if not embeddings:  # an empty set (e.g. no synthetic sample) keeps its shapes
        classes, dim = model.head.weight.shape
        shape = (0, VIEWS[views].count, dim)
        empty = {name: np.zeros(0, np.float64) for name in model.own_score_names()}
        return Embedded(np.zeros(shape, np.float32), np.zeros((0, classes), np.float32), empty)
    scores = {
        name: np.asarray(torch.cat(parts).numpy(), dtype=np.float64).round(6)
        for name, parts in own.items()
    }
    return Embedded(torch.cat(embeddings).numpy(), torch.cat(probabilities).numpy(), scores)


@torch.inference_mode()
def network_maps(
    model: AnomalyNet,
    images: torch.Tensor,
    batch_size: int,
    device: torch.device,
    amp: bool = False,
) -> dict[str, np.ndarray]:
    """The network's own heat maps of each uint8 image by name (N, H, W) in [0, 1], float32,
    in eval mode (AnomalyNet.heat_maps: `segmentation`, `patch`; none for a network without
    either; the segmentation map of the image as it is, the patch map over its memory's
    views)."""
    maps: dict[str, list[torch.Tensor]] = {}
    for x, count in _normalized_batches(model, images, batch_size, device, None):
        with _autocast(device, amp):
            for name, heat in model.heat_maps(x).items():
                maps.setdefault(name, []).append(heat.float()[:count].cpu())
    empty = np.zeros((0, *images.shape[-2:]), np.float32)
    return {
        name: torch.cat(maps[name]).numpy() if name in maps else empty
        for name in model.heat_map_names()
    }


# no_grad, not inference_mode: the memory's tensors stay in the network, and a trace of it in
# the same process (the ONNX export of a network fitted in memory, as the tests do; a loaded
# checkpoint has none) refuses inference-mode tensors: the exporter falls back to its strict
# trace, four times slower.
@torch.no_grad()
def fit_patch_memory(
    model: AnomalyNet,
    good: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> None:
    """Fill the network's patch memory with the patch vectors of each of its views
    (model.patch_views) of the good training images (uint8, N x 3 x H x W), in eval mode: what
    PatchCore calls training, after the weights."""
    view_set = VIEWS[model.patches.view_set]
    vectors: list[list[torch.Tensor]] = [[] for _ in range(view_set.count)]
    for x, count in _normalized_batches(model, good, batch_size, device, None):
        for view, pixels in enumerate(view_set.of(x)):
            vectors[view].append(model.patch_vectors(pixels)[:count].cpu())
    model.patches.fit([torch.cat(view) for view in vectors])
    model.to(device)


def softmax_score(probabilities: np.ndarray) -> np.ndarray:
    """The softmax score as the pipeline stores it: P(anomalous) in float64, rounded to 6
    decimals, so that its CSV round trip is exact and predict gives the embed stage's bits."""
    return np.asarray(probabilities[:, 1], dtype=np.float64).round(6)
