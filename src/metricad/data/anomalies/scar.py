"""`scar`: a thin, long, rotated strip of the image, colour-jittered, pasted at another place
(CutPaste-scar, Li et al. 2021)."""

from __future__ import annotations

import math

import torch

from metricad.data.anomalies.base import ANOMALIES, JITTER, Pool, blend, uniform

# CutPaste's published ranges: width 2-16 px and length 10-25 px on 256 px images, rotated by
# up to 45 degrees.
SCAR_WIDTH = (2 / 256, 16 / 256)
SCAR_LENGTH = (10 / 256, 25 / 256)
SCAR_ANGLE = 45.0


@ANOMALIES.register("scar")
def scar(
    image: torch.Tensor, generator: torch.Generator, jitter: float = JITTER, pool: Pool = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A thin, long, rotated strip of the image, colour-jittered, pasted at another place."""
    size = image.shape[-1]
    width = max(1.0, uniform(generator, *SCAR_WIDTH) * size)
    length = max(2.0, uniform(generator, *SCAR_LENGTH) * size)
    angle = math.radians(uniform(generator, -SCAR_ANGLE, SCAR_ANGLE))
    # The strip's centre keeps its whole length inside the image.
    reach = length / 2 + width / 2
    cy = uniform(generator, reach, size - reach) if size > 2 * reach else size / 2
    cx = uniform(generator, reach, size - reach) if size > 2 * reach else size / 2
    axis = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(axis - cy, axis - cx, indexing="ij")
    along = x * math.cos(angle) + y * math.sin(angle)
    across = -x * math.sin(angle) + y * math.cos(angle)
    mask = (along.abs() <= length / 2) & (across.abs() <= width / 2)
    if not mask.any():  # a strip thinner than a pixel between pixel centres
        mask[int(cy), int(cx)] = True
    return blend(image, mask, 1.0, generator, jitter), mask
