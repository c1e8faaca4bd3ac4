"""CAM methods: each turns a layer's activations and the target score's gradients into a
per-pixel map, registered under its `gradcam.method` name by its own file in this package
(gradcam.py runs the network and the hooks around it)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from metricad.registry import Registry, import_entries

# (activations, gradients), both (N, C, h, w) float32 -> (N, 1, h, w), before the ReLU.
CamWeighting = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CAMS: Registry[CamWeighting] = Registry("CAM method", "gradcam.method")

import_entries(__name__, __path__)
