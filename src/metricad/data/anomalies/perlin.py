"""`perlin`: DRAEM's anomaly without its download (Zavrtanik et al. 2021): Perlin-noise blobs
filled with a foreign texture (another good image, turned and moved; the image itself, moved;
or smooth procedural colour), semi-transparent, and kept on the object (foreground) so that a
photo's empty background is never taught as a defect."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from metricad.data.anomalies.base import ANOMALIES, JITTER, jittered, randint, uniform

# Noise of 2, 4 or 8 cells a side thresholded at 0.5, the foreign texture blended with
# opacity 1 - beta, beta in [0, 0.8); a mask covers at least this share of the image (else
# redrawn, then a square is used).
PERLIN_CELLS = (1, 3)  # log2 range
PERLIN_THRESHOLD = 0.5
PERLIN_BETA = (0.0, 0.8)
PERLIN_MIN_AREA = 1 / 400
PERLIN_TRIES = 10
# Foreground: pixels whose colour differs from the border's median colour by more than this
# (of 255); a share below 5 % or above 95 % is a texture: all of it is foreground.
FOREGROUND_DISTANCE = 30
FOREGROUND_SHARE = (0.05, 0.95)


def perlin_noise(size: int, cells: int, generator: torch.Generator) -> torch.Tensor:
    """Perlin gradient noise (size, size), `cells` lattice cells a side, values about [-1, 1]."""
    angles = 2 * math.pi * torch.rand(cells + 1, cells + 1, generator=generator)
    gradients = torch.stack((angles.cos(), angles.sin()), dim=-1)
    position = (torch.arange(size, dtype=torch.float32) + 0.5) * cells / size
    cell = position.floor().long().clamp(max=cells - 1)
    offset = position - cell
    fy, fx = offset[:, None], offset[None, :]

    def corner(dy: int, dx: int) -> torch.Tensor:
        # Rows, then columns: two index_selects, not a broadcast (size, size) gather (50x
        # slower on the CPU); the same values.
        gradient = gradients.index_select(0, cell + dy).index_select(1, cell + dx)
        return gradient[..., 0] * (fy - dy) + gradient[..., 1] * (fx - dx)

    def fade(t: torch.Tensor) -> torch.Tensor:
        return t * t * t * (t * (t * 6 - 15) + 10)

    u, v = fade(fy), fade(fx)
    top = corner(0, 0) * (1 - v) + corner(0, 1) * v
    bottom = corner(1, 0) * (1 - v) + corner(1, 1) * v
    return (top * (1 - u) + bottom * u) * math.sqrt(2)


def foreground(image: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: the object of a uint8 image (3, H, W), as the pixels whose colour differs
    from the median colour of the image's border, widened by 4 px; the whole image when that
    share is tiny or nearly all (a texture, or an object filling the frame)."""
    pixels = image.float()
    border = torch.cat(
        [pixels[:, :4].flatten(1), pixels[:, -4:].flatten(1)]
        + [pixels[:, :, :4].flatten(1), pixels[:, :, -4:].flatten(1)],
        dim=1,
    )
    background = border.median(dim=1).values[:, None, None]
    differs = (pixels - background).abs().amax(dim=0) > FOREGROUND_DISTANCE
    # A 9 x 9 maximum as a 9 x 1 then a 1 x 9 one: the same pixels, a quarter of the work.
    rows = F.max_pool2d(differs[None, None].float(), (9, 1), 1, (4, 0))
    widened = F.max_pool2d(rows, (1, 9), 1, (0, 4))[0, 0] > 0
    share = float(widened.float().mean())
    if not FOREGROUND_SHARE[0] <= share <= FOREGROUND_SHARE[1]:
        return torch.ones_like(widened)
    return widened


def _perlin_mask(object_mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    size = object_mask.shape[-1]
    least = max(4, round(PERLIN_MIN_AREA * size * size))
    for _ in range(PERLIN_TRIES):
        cells = 2 ** randint(generator, *PERLIN_CELLS)
        mask = (perlin_noise(size, cells, generator) > PERLIN_THRESHOLD) & object_mask
        if int(mask.sum()) >= least:
            return mask
    # A sliver of an object: a square on one of its pixels instead.
    ys, xs = torch.nonzero(object_mask, as_tuple=True)
    pick = randint(generator, 0, len(ys) - 1)
    half = max(2, size // 32)
    mask = torch.zeros_like(object_mask)
    y, x = int(ys[pick]), int(xs[pick])
    mask[max(0, y - half) : y + half, max(0, x - half) : x + half] = True
    return mask


def _foreign_texture(
    image: torch.Tensor, pool: torch.Tensor | None, generator: torch.Generator
) -> torch.Tensor:
    """Float (3, H, W): another image of the pool turned and moved, the image itself moved,
    or smooth procedural colour, one of the three drawn."""
    size = image.shape[-1]
    source = randint(generator, 0, 2)
    shifts = (randint(generator, 0, size - 1), randint(generator, 0, size - 1))
    if source == 0 and pool is not None and len(pool):
        other = pool[randint(generator, 0, len(pool) - 1)].to(image.device)
        turned = torch.rot90(other, randint(generator, 0, 3), dims=(-2, -1)).float()
        return torch.roll(turned, shifts=shifts, dims=(-2, -1))
    if source <= 1:
        return torch.roll(image.float(), shifts=shifts, dims=(-2, -1))
    cells = 2 ** randint(generator, *PERLIN_CELLS)
    channels = torch.stack([perlin_noise(size, cells, generator) for _ in range(3)])
    base = 255 * torch.rand(3, 1, 1, generator=generator)
    return (channels * 80 + base).to(image.device)


@ANOMALIES.register("perlin")
def perlin(
    image: torch.Tensor,
    generator: torch.Generator,
    jitter: float = JITTER,
    pool: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DRAEM's anomaly: Perlin-noise blobs on the object, filled with a foreign texture
    (from `pool`, uint8 (M, 3, H, W) good images, or made here), colour-jittered and blended
    with opacity 1 - beta."""
    mask = _perlin_mask(foreground(image.cpu()), generator)
    texture = jittered(_foreign_texture(image, pool, generator), generator, jitter)
    beta = uniform(generator, *PERLIN_BETA)
    weight = mask.to(image.device).float()
    blended = image.float() * (1 - weight) + (texture * (1 - beta) + image.float() * beta) * weight
    return blended.round().clamp(0, 255).to(torch.uint8), mask
