"""`arcface`: ArcFace, an additive angular margin on the target class at a fixed scale."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from metricad import portable_math
from metricad.model.heads.base import HEADS, CosineHead


@HEADS.register("arcface")
class ArcFace(CosineHead):
    """ArcFace (Deng et al. 2019): an additive angular margin on the target class, fixed scale."""

    def __init__(
        self, embedding_dim: int, num_classes: int, scale: float = 30.0, margin: float = 0.5
    ) -> None:
        super().__init__(embedding_dim, num_classes)
        self.margin = margin
        self.register_buffer("scale", torch.tensor(float(scale)))

    @classmethod
    def from_arch(cls, embedding_dim: int, num_classes: int, arch: dict[str, Any]) -> ArcFace:
        return cls(
            embedding_dim,
            num_classes,
            arch.get("arcface_scale", 30.0),
            arch.get("arcface_margin", 0.5),
        )

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosines = self.cosines(embeddings)
        if labels is None or not self.training:
            return self.scale * cosines
        # cos(min(theta + m, pi)) = cos(theta)cos(m) - sin(theta)sin(m), and -1 once theta
        # passes pi - m, i.e. cos(theta) < -cos(m); written without acos (see above).
        inside = cosines.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
        sines = portable_math.sqrt(1.0 - inside * inside)
        shifted = inside * math.cos(self.margin) - sines * math.sin(self.margin)
        with_margin = torch.where(inside < -math.cos(self.margin), -1.0, shifted)
        target = F.one_hot(labels, cosines.shape[1]).bool()
        return self.scale * torch.where(target, with_margin, cosines)
