"""Eval-mode passes over a set of images: embeddings and class probabilities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from metricad.data.batches import eval_batches, normalize
from metricad.model.torch_model import AnomalyNet
from metricad.model.views import VIEWS, view_outputs, view_probabilities
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
    views' mean softmax probability of each class (N, C) float32, and with a segmentation
    head the map's image score (N,) float64 rounded to 6 decimals as the pipeline stores it
    (see softmax_score); None without the head."""

    embeddings: np.ndarray
    probabilities: np.ndarray
    map_scores: np.ndarray | None


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
    """Every view's embedding, the class probabilities and the map score of each uint8 image
    (model/views/), one backbone pass per view, in eval mode. `amp`: bfloat16 autocast on CUDA
    (ignored on the CPU); the results are float32 (the map scores float64).
    """
    embeddings, probabilities, map_scores = [], [], []
    label = "embed" if progress else None
    for x, count in _normalized_batches(model, images, batch_size, device, label):
        with _autocast(device, amp):
            embedding, map_score = view_outputs(model, x, views)
        embedding = embedding.float()
        probabilities.append(view_probabilities(model, embedding)[:count].cpu())
        embeddings.append(embedding[:count].cpu())
        if map_score is not None:
            map_scores.append(map_score.float()[:count].cpu())
    segmented = model.segmenter is not None
    if not embeddings:  # an empty set (e.g. no synthetic sample) keeps its shapes
        classes, dim = model.head.weight.shape
        shape = (0, VIEWS[views].count, dim)
        empty = np.zeros(0, np.float64) if segmented else None
        return Embedded(np.zeros(shape, np.float32), np.zeros((0, classes), np.float32), empty)
    scores = None
    if segmented:
        scores = np.asarray(torch.cat(map_scores).numpy(), dtype=np.float64).round(6)
    return Embedded(torch.cat(embeddings).numpy(), torch.cat(probabilities).numpy(), scores)


@torch.inference_mode()
def anomaly_maps(
    model: AnomalyNet,
    images: torch.Tensor,
    batch_size: int,
    device: torch.device,
    amp: bool = False,
) -> np.ndarray:
    """The segmentation head's map of each uint8 image (N, H, W) in [0, 1], float32, in eval
    mode (the image as it is: a map belongs to one view). Needs model.segmentation."""
    maps = []
    for x, count in _normalized_batches(model, images, batch_size, device, None):
        with _autocast(device, amp):
            maps.append(model.anomaly_map(x).float()[:count].cpu())
    if not maps:
        return np.zeros((0, *images.shape[-2:]), np.float32)
    return torch.cat(maps).numpy()


def softmax_score(probabilities: np.ndarray) -> np.ndarray:
    """The softmax score as the pipeline stores it: P(anomalous) in float64, rounded to 6
    decimals, so that its CSV round trip is exact and predict gives the embed stage's bits."""
    return np.asarray(probabilities[:, 1], dtype=np.float64).round(6)
