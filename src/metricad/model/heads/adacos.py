"""`adacos`: AdaCos, the article's head: a cosine softmax whose scale adapts during training."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from metricad import portable_math
from metricad.model.heads.base import HEADS, CosineHead
from metricad.validation import ranged


@dataclass(frozen=True)
class AdaCosSettings:
    """model.adacos: the head's own settings."""

    # Floor of the adaptive scale: the textbook value is 0 for two classes.
    min_scale: float = ranged(0.0, 64.0, default=10.0)


@HEADS.register("adacos", settings=AdaCosSettings)
class AdaCos(CosineHead):
    """AdaCos (Zhang et al. 2019): a cosine softmax whose scale adapts during training.

    The textbook initial scale sqrt(2)*ln(C-1) is 0 for two classes, and the update
    ln(B_avg)/cos(theta_med) then stays at 0 (B_avg = 1) or turns negative once the classes
    separate, so a binary head never learns. The scale is therefore kept at or above
    `min_scale`; with min_scale=0 this is the textbook head.
    """

    def __init__(self, embedding_dim: int, num_classes: int, settings: AdaCosSettings) -> None:
        super().__init__(embedding_dim, num_classes)
        self.min_scale = settings.min_scale
        textbook = math.sqrt(2.0) * math.log(max(num_classes - 1, 1))
        self.register_buffer("scale", torch.tensor(max(textbook, self.min_scale)))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosines = self.cosines(embeddings)
        if labels is not None and self.training:
            self._update_scale(cosines.detach(), labels)
        return self.scale * cosines

    @torch.no_grad()
    def _update_scale(self, cosines: torch.Tensor, labels: torch.Tensor) -> None:
        one_hot = F.one_hot(labels, cosines.shape[1]).bool()
        exps = portable_math.exp(self.scale * cosines)
        b_avg = torch.where(one_hot, 0.0, exps).sum(dim=1).mean()
        # cos(min(median angle, pi/4)) without acos/cos: the median angle (torch.median's
        # lower median) is the angle of the matching median cosine, -median(-cosines).
        cos_med = -torch.median(-cosines[one_hot])
        new_scale = torch.log1p(b_avg - 1.0) / cos_med.clamp(min=math.cos(math.pi / 4))
        # The cap keeps exp(scale * cos) finite in float32 (and float16 under AMP).
        self.scale.copy_(new_scale.clamp(min=self.min_scale, max=64.0))
