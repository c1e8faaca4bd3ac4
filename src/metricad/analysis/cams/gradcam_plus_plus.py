"""`gradcam++` (Chattopadhyay et al. 2018): positive gradients weighted per position, in the
closed form for an exponential score."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from metricad.analysis.cams import CAMS


@CAMS.register("gradcam++")
def gradcam_plus_plus(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    grads2, grads3 = gradients.pow(2), gradients.pow(3)
    total = activations.sum(dim=(2, 3), keepdim=True)
    denominator = (2 * grads2 + total * grads3).where(gradients != 0, torch.ones_like(grads2))
    weights = (grads2 / denominator * F.relu(gradients)).sum(dim=(2, 3))
    return (weights[:, :, None, None] * activations).sum(dim=1, keepdim=True)
