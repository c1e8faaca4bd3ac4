"""What a view set is, and its registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from metricad.registry import Registry


@dataclass(frozen=True)
class ViewSet:
    """`count` views of a batch of images (N, C, H, W): `of` returns them as a list, each a
    batch of the same shape, the first the images themselves (AnomalyNet's passes share it:
    embed_and_scores, heat_maps); `back` turns maps (N, h, w) of the view numbered `view`
    (in `of`'s order) back into the image's own frame (the patch memory averages its views'
    maps there). `identity`: the only view is the image itself (predict then reuses the
    embedding of the Grad-CAM pass)."""

    count: int
    of: Callable[[torch.Tensor], list[torch.Tensor]]
    back: Callable[[torch.Tensor, int], torch.Tensor]
    identity: bool = False


VIEWS: Registry[ViewSet] = Registry("view set", "embed.views")
