"""`cutpaste`: a rectangle of the image, colour-jittered, pasted at another place (CutPaste,
Li et al. 2021)."""

from __future__ import annotations

import math

import torch

from metricad.data.anomalies.base import ANOMALIES, JITTER, Pool, blend, randint, uniform

# CutPaste's published ranges: patch area 2-15 % of the image, aspect ratio 0.3-3.3.
AREA_RANGE = (0.02, 0.15)
ASPECT_RANGE = (0.3, 1 / 0.3)


@ANOMALIES.register("cutpaste")
def cutpaste(
    image: torch.Tensor, generator: torch.Generator, jitter: float = JITTER, pool: Pool = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A rectangle of the image, colour-jittered, pasted at another place (inside the image)."""
    size = image.shape[-1]
    area = uniform(generator, *AREA_RANGE) * size * size
    aspect = math.exp(uniform(generator, *(math.log(a) for a in ASPECT_RANGE)))
    height = max(1, min(size, round(math.sqrt(area * aspect))))
    width = max(1, min(size, round(math.sqrt(area / aspect))))
    top = randint(generator, 0, size - height)
    left = randint(generator, 0, size - width)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top : top + height, left : left + width] = True
    return blend(image, mask, 1.0, generator, jitter), mask
