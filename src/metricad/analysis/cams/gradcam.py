"""`gradcam` (Selvaraju et al. 2017): channels weighted by their spatially averaged gradient."""

from __future__ import annotations

import torch

from metricad.analysis.cams import CAMS


@CAMS.register("gradcam")
def gradcam(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    weights = gradients.mean(dim=(2, 3))
    return (weights[:, :, None, None] * activations).sum(dim=1, keepdim=True)
