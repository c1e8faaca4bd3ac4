"""`hirescam` (Draelos & Carin 2020): the gradient itself weighs each position. Faithful when
the head sees every position separately (flatten + Linear, as here), where Grad-CAM's averaged
gradient can cancel out."""

from __future__ import annotations

import torch

from metricad.analysis.cams import CAMS


@CAMS.register("hirescam")
def hirescam(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    return (gradients * activations).sum(dim=1, keepdim=True)
