"""`noise`: a smooth-noise-shaped blob (DRAEM's Perlin masks) blending in another part of the
image itself."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from metricad.data.anomalies.base import ANOMALIES, JITTER, Pool, blend, randint, uniform

# The low-frequency grid the blob shape comes from, its area and its opacity range.
NOISE_CELLS = (2, 6)
NOISE_OPACITY = (0.5, 1.0)
NOISE_AREA = (0.02, 0.15)


@ANOMALIES.register("noise")
def noise_blend(
    image: torch.Tensor, generator: torch.Generator, jitter: float = JITTER, pool: Pool = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth-noise-shaped blob (DRAEM's Perlin masks) blending in another part of the image."""
    size = image.shape[-1]
    cells = randint(generator, *NOISE_CELLS)
    coarse = torch.rand(1, 1, cells + 1, cells + 1, generator=generator)
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0, 0]
    # Keep the hottest share of the field: a blob (or a few) of the drawn area.
    share = uniform(generator, *NOISE_AREA)
    threshold = torch.quantile(field.flatten(), 1 - share)
    mask = field >= threshold
    return blend(image, mask, uniform(generator, *NOISE_OPACITY), generator, jitter), mask
