"""What a framing is, and its registry."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metricad.registry import Registry

# (uint8 HxWx3 image, bool HxW mask or None[, settings]) -> the framed image and mask
Framing = Callable[..., tuple[np.ndarray, np.ndarray | None]]

FRAMINGS: Registry[Framing] = Registry("framing", "resize.framing")
