"""`arcface`: ArcFace, an additive angular margin on the target class at a fixed scale."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from metricad import portable_math
from metricad.model.heads.base import HEADS, CosineHead
from metricad.validation import ranged


@dataclass(frozen=True)
class ArcFaceSettings:
    """model.arcface: the head's own settings."""

    scale: float = ranged(0.1, 128.0, default=30.0)
    margin: float = ranged(0.0, 1.5, default=0.5)  # added to the target class's angle


@HEADS.register("arcface", settings=ArcFaceSettings)
class ArcFace(CosineHead):
    """ArcFace (Deng et al. 2019): an additive angular margin on the target class, fixed scale."""

    def __init__(self, embedding_dim: int, num_classes: int, settings: ArcFaceSettings) -> None:
        super().__init__(embedding_dim, num_classes)
        self.margin = settings.margin
        self.register_buffer("scale", torch.tensor(float(settings.scale)))

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
