"""What every metric head is: class centres on the unit sphere, and the registry."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from metricad.registry import Registry


class CosineHead(nn.Module):
    """Class centres on the unit sphere; logits are scale * cos(angle to each centre)."""

    def __init__(self, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        # A product and a sum, not F.linear: MKL's kernel for a two-column matrix product
        # gives other last bits on Intel and AMD processors.
        products = F.normalize(embeddings)[:, None, :] * F.normalize(self.weight)[None]
        return products.sum(dim=2).clamp(-1.0, 1.0)


HEADS: Registry[type[CosineHead]] = Registry("metric head", "model.head")
