"""Eval-mode passes over a set of images: embeddings and class probabilities."""

from __future__ import annotations

import numpy as np
import torch

from metricad.data.batches import eval_batches, normalize
from metricad.model.torch_model import AnomalyNet
from metricad.model.views import DIHEDRAL_VIEWS, view_embeddings, view_probabilities
from metricad.params import Views
from metricad.runtime import memory_format_for


@torch.inference_mode()
def embed_and_score(
    model: AnomalyNet,
    images: torch.Tensor,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
    amp: bool = False,
    views: Views = "single",
) -> tuple[np.ndarray, np.ndarray]:
    """The embedding (N, D) and the softmax probability of each class (N, C), in eval mode.

    `amp`: bfloat16 autocast on CUDA (ignored on the CPU); the results are float32.
    `views`: `dihedral` embeds the eight flips and quarter turns, (N, 8, D), and averages
    their probabilities (model/views.py).
    """
    model.to(device=device, memory_format=memory_format_for(device)).eval()
    embeddings, probabilities = [], []
    for batch, count in eval_batches(images, batch_size, "embed" if progress else None):
        x = normalize(batch.to(device))
        with torch.autocast(device.type, torch.bfloat16, enabled=amp and device.type == "cuda"):
            embedding = view_embeddings(model, x, views).float()
        probabilities.append(view_probabilities(model, embedding)[:count].cpu())
        embeddings.append(embedding[:count].cpu())
    if not embeddings:  # an empty set (e.g. no synthetic sample) keeps its two shapes
        classes, dim = model.head.weight.shape
        shape = (0, dim) if views == "single" else (0, DIHEDRAL_VIEWS, dim)
        return np.zeros(shape, np.float32), np.zeros((0, classes), np.float32)
    return torch.cat(embeddings).numpy(), torch.cat(probabilities).numpy()


def softmax_score(probabilities: np.ndarray) -> np.ndarray:
    """The softmax score as the pipeline stores it: P(anomalous) in float64, rounded to 6
    decimals, so that its CSV round trip is exact and predict gives the embed stage's bits."""
    return np.asarray(probabilities[:, 1], dtype=np.float64).round(6)
