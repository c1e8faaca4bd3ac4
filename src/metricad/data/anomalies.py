"""Synthetic training anomalies made from good images: CutPaste, CutPaste-scar, noise blends,
and DRAEM's Perlin-noise anomalies.

CutPaste, scar and noise move a piece of the image itself to another place and change its
colour a little, so the network learns "something here does not belong" without ever seeing a
real defect (Li et al., CutPaste, CVPR 2021; the noise-shaped blend follows DRAEM, Zavrtanik
et al. 2021, with the image's own texture). `perlin` is DRAEM's recipe without its download:
Perlin-noise blobs filled with a foreign texture (another good image, turned and moved; the
image itself, moved; or smooth procedural colour), semi-transparent, and kept on the object
(foreground) so that a photo's empty background is never taught as a defect.

Every draw comes from the torch.Generator passed in, so a seed gives the same anomalies
(and a resumed training run draws what an uninterrupted one would). Images are uint8
tensors (3, H, W); the returned mask (H, W) bool marks every pixel that may have changed.
"""

from __future__ import annotations

import math
import typing

import torch
import torch.nn.functional as F

from metricad.params import SyntheticKind

# Good images a foreign texture may come from (perlin); the other kinds take none.
Pool = torch.Tensor | None
CHOICES = typing.get_args(SyntheticKind)
# What each image can become; `mixed` draws one of the first three per image.
KINDS = tuple(kind for kind in CHOICES if kind not in ("none", "mixed"))
MIXED = ("cutpaste", "scar", "noise")

# CutPaste's published ranges: patch area 2-15 % of the image, aspect ratio 0.3-3.3;
# scar width 2-16 px and length 10-25 px on 256 px images, rotated by up to 45 degrees.
AREA_RANGE = (0.02, 0.15)
ASPECT_RANGE = (0.3, 1 / 0.3)
SCAR_WIDTH = (2 / 256, 16 / 256)
SCAR_LENGTH = (10 / 256, 25 / 256)
SCAR_ANGLE = 45.0
# Colour jitter of the moved piece: CutPaste's published 0.1 for brightness, contrast and
# saturation. The pipeline's default (train.synthetic_jitter) is stronger (docs/results.md).
JITTER = 0.1
# Noise blends: the low-frequency grid the blob shape comes from, and its opacity range.
NOISE_CELLS = (2, 6)
NOISE_OPACITY = (0.5, 1.0)
NOISE_AREA = (0.02, 0.15)
# Perlin anomalies (DRAEM): noise of 2, 4 or 8 cells a side thresholded at 0.5, the foreign
# texture blended with opacity 1 - beta, beta in [0, 0.8); a mask covers at least this share
# of the image (else redrawn, then a square is used).
PERLIN_CELLS = (1, 3)  # log2 range
PERLIN_THRESHOLD = 0.5
PERLIN_BETA = (0.0, 0.8)
PERLIN_MIN_AREA = 1 / 400
PERLIN_TRIES = 10
# Foreground: pixels whose colour differs from the border's median colour by more than this
# (of 255); a share below 5 % or above 95 % is a texture: all of it is foreground.
FOREGROUND_DISTANCE = 30
FOREGROUND_SHARE = (0.05, 0.95)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high] inclusive."""
    return int(torch.randint(low, high + 1, (), generator=generator).item())


def _jitter(pixels: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s] (float)."""
    low, high = 1 - strength, 1 + strength
    brightness, contrast, saturation = (_uniform(generator, low, high) for _ in "bcs")
    pixels = pixels * brightness
    mean = pixels.mean()
    pixels = mean + (pixels - mean) * contrast
    grey = pixels.mean(dim=0, keepdim=True)
    return grey + (pixels - grey) * saturation


def _blend(
    image: torch.Tensor,
    mask: torch.Tensor,
    opacity: float,
    generator: torch.Generator,
    jitter: float,
) -> torch.Tensor:
    """Paste a colour-jittered piece of `image`, cut from another place, where `mask` is set.

    The piece is the mask's bounding box moved to a random source box inside the image, so
    every pasted pixel comes from the image itself (no wrap-around seam).
    """
    size_y, size_x = mask.shape
    ys, xs = torch.nonzero(mask, as_tuple=True)
    top, left = int(ys.min()), int(xs.min())
    height, width = int(ys.max()) - top + 1, int(xs.max()) - left + 1
    source_top = _randint(generator, 0, size_y - height)
    source_left = _randint(generator, 0, size_x - width)
    shift = (top - source_top, left - source_left)
    source = _jitter(torch.roll(image.float(), shifts=shift, dims=(-2, -1)), generator, jitter)
    # The mask is drawn on the CPU (its bounding box above needs no device sync); the pixels
    # are blended where the image lives.
    mask = mask.to(image.device)
    weight = mask.float() * opacity
    mixed = image.float() * (1 - weight) + source * weight
    return torch.where(mask, mixed.round().clamp(0, 255).to(torch.uint8), image)


def cutpaste(
    image: torch.Tensor, generator: torch.Generator, jitter: float = JITTER, pool: Pool = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A rectangle of the image, colour-jittered, pasted at another place (inside the image)."""
    size = image.shape[-1]
    area = _uniform(generator, *AREA_RANGE) * size * size
    aspect = math.exp(_uniform(generator, *(math.log(a) for a in ASPECT_RANGE)))
    height = max(1, min(size, round(math.sqrt(area * aspect))))
    width = max(1, min(size, round(math.sqrt(area / aspect))))
    top = _randint(generator, 0, size - height)
    left = _randint(generator, 0, size - width)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top : top + height, left : left + width] = True
    return _blend(image, mask, 1.0, generator, jitter), mask


def scar(
    image: torch.Tensor, generator: torch.Generator, jitter: float = JITTER, pool: Pool = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A thin, long, rotated strip of the image, colour-jittered, pasted at another place."""
    size = image.shape[-1]
    width = max(1.0, _uniform(generator, *SCAR_WIDTH) * size)
    length = max(2.0, _uniform(generator, *SCAR_LENGTH) * size)
    angle = math.radians(_uniform(generator, -SCAR_ANGLE, SCAR_ANGLE))
    # The strip's centre keeps its whole length inside the image.
    reach = length / 2 + width / 2
    cy = _uniform(generator, reach, size - reach) if size > 2 * reach else size / 2
    cx = _uniform(generator, reach, size - reach) if size > 2 * reach else size / 2
    axis = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(axis - cy, axis - cx, indexing="ij")
    along = x * math.cos(angle) + y * math.sin(angle)
    across = -x * math.sin(angle) + y * math.cos(angle)
    mask = (along.abs() <= length / 2) & (across.abs() <= width / 2)
    if not mask.any():  # a strip thinner than a pixel between pixel centres
        mask[int(cy), int(cx)] = True
    return _blend(image, mask, 1.0, generator, jitter), mask


def noise_blend(
    image: torch.Tensor, generator: torch.Generator, jitter: float = JITTER, pool: Pool = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth-noise-shaped blob (DRAEM's Perlin masks) blending in another part of the image."""
    size = image.shape[-1]
    cells = _randint(generator, *NOISE_CELLS)
    coarse = torch.rand(1, 1, cells + 1, cells + 1, generator=generator)
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0, 0]
    # Keep the hottest share of the field: a blob (or a few) of the drawn area.
    share = _uniform(generator, *NOISE_AREA)
    threshold = torch.quantile(field.flatten(), 1 - share)
    mask = field >= threshold
    return _blend(image, mask, _uniform(generator, *NOISE_OPACITY), generator, jitter), mask


def perlin_noise(size: int, cells: int, generator: torch.Generator) -> torch.Tensor:
    """Perlin gradient noise (size, size), `cells` lattice cells a side, values about [-1, 1]."""
    angles = 2 * math.pi * torch.rand(cells + 1, cells + 1, generator=generator)
    gradients = torch.stack((angles.cos(), angles.sin()), dim=-1)
    position = (torch.arange(size, dtype=torch.float32) + 0.5) * cells / size
    cell = position.floor().long().clamp(max=cells - 1)
    offset = position - cell
    fy, fx, iy, ix = offset[:, None], offset[None, :], cell[:, None], cell[None, :]

    def corner(dy: int, dx: int) -> torch.Tensor:
        gradient = gradients[iy + dy, ix + dx]
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
    widened = F.max_pool2d(differs[None, None].float(), 9, 1, 4)[0, 0] > 0
    share = float(widened.float().mean())
    if not FOREGROUND_SHARE[0] <= share <= FOREGROUND_SHARE[1]:
        return torch.ones_like(widened)
    return widened


def _perlin_mask(object_mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    size = object_mask.shape[-1]
    least = max(4, round(PERLIN_MIN_AREA * size * size))
    for _ in range(PERLIN_TRIES):
        cells = 2 ** _randint(generator, *PERLIN_CELLS)
        mask = (perlin_noise(size, cells, generator) > PERLIN_THRESHOLD) & object_mask
        if int(mask.sum()) >= least:
            return mask
    # A sliver of an object: a square on one of its pixels instead.
    ys, xs = torch.nonzero(object_mask, as_tuple=True)
    pick = _randint(generator, 0, len(ys) - 1)
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
    source = _randint(generator, 0, 2)
    shifts = (_randint(generator, 0, size - 1), _randint(generator, 0, size - 1))
    if source == 0 and pool is not None and len(pool):
        other = pool[_randint(generator, 0, len(pool) - 1)].to(image.device)
        turned = torch.rot90(other, _randint(generator, 0, 3), dims=(-2, -1)).float()
        return torch.roll(turned, shifts=shifts, dims=(-2, -1))
    if source <= 1:
        return torch.roll(image.float(), shifts=shifts, dims=(-2, -1))
    cells = 2 ** _randint(generator, *PERLIN_CELLS)
    channels = torch.stack([perlin_noise(size, cells, generator) for _ in range(3)])
    base = 255 * torch.rand(3, 1, 1, generator=generator)
    return (channels * 80 + base).to(image.device)


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
    texture = _jitter(_foreign_texture(image, pool, generator), generator, jitter)
    beta = _uniform(generator, *PERLIN_BETA)
    weight = mask.to(image.device).float()
    blended = image.float() * (1 - weight) + (texture * (1 - beta) + image.float() * beta) * weight
    return blended.round().clamp(0, 255).to(torch.uint8), mask


_MAKERS = {"cutpaste": cutpaste, "scar": scar, "noise": noise_blend, "perlin": perlin}


def _resolved(kind: str, generator: torch.Generator) -> str:
    """`kind` itself, or for `mixed` one of MIXED drawn from the generator."""
    return MIXED[_randint(generator, 0, len(MIXED) - 1)] if kind == "mixed" else kind


def synthesize(
    image: torch.Tensor,
    kind: str,
    generator: torch.Generator,
    jitter: float = JITTER,
    pool: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One synthetic anomaly of `kind` (one of KINDS, or `mixed`) from a good uint8 image;
    `pool`: good images a foreign texture may come from (perlin)."""
    return _MAKERS[_resolved(kind, generator)](image, generator, jitter, pool)


# What training uses when the params ask for real defects in training but the data has none
# to spare (see kind_for_training).
FALLBACK_KIND = "cutpaste"


def kind_for_training(kind: str, real_anomalies: int, anomalous_train_fraction: float) -> str:
    """The kind of synthetic anomaly training uses: `kind` as configured, or FALLBACK_KIND when
    the params ask for real defects in training (fraction > 0) but the split put none there
    (too few defect images: a defect type with a single image stays in test)."""
    if kind == "none" and real_anomalies == 0 and anomalous_train_fraction > 0:
        return FALLBACK_KIND
    return kind


def corrupt_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    kind: str,
    share: float,
    jitter: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Turn round(share * good images) seeded-random good images of a batch into anomalies;
    return the images, the labels and the masks of the synthetic pixels (N, H, W) bool, on
    the images' device (all False for the images left as they were).

    Real anomalous images stay as they are; with `kind` "none" nothing is drawn, so the
    random stream of a run without synthetic anomalies is unchanged. `images` may live on
    any device; `labels` are read on the CPU (the training loop keeps them there). Foreign
    textures (perlin) come from the batch's own images as they were.
    """
    masks = torch.zeros(len(images), *images.shape[-2:], dtype=torch.bool, device=images.device)
    if kind == "none" or share <= 0:
        return images, labels, masks
    good = torch.nonzero(labels.cpu() == 0).flatten()
    count = round(share * len(good))
    if count == 0:
        return images, labels, masks
    chosen = good[torch.randperm(len(good), generator=generator)[:count]]
    pool, images, labels = images, images.clone(), labels.clone()
    for index in chosen.tolist():
        images[index], mask = synthesize(pool[index], kind, generator, jitter, pool)
        masks[index] = mask.to(images.device)
        labels[index] = 1
    return images, labels, masks


def synthetic_sample(
    images: torch.Tensor, count: int, kind: str, jitter: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, list[int], list[str]]:
    """A fixed, seeded sample of `count` synthetic anomalies made from `images` (good, uint8).

    Returns the anomalies (N, 3, H, W), their masks (N, H, W), the index of each one's source
    image and the kind drawn (for `mixed`). Sources cycle through a seeded permutation, so
    every good image is used before any is used twice. `kind` "none" gives an empty sample.
    """
    size = images.shape[-2:]
    if kind == "none" or count == 0 or len(images) == 0:
        empty = torch.zeros(0, 3, *size, dtype=torch.uint8)
        return empty, torch.zeros(0, *size, dtype=torch.bool), [], []
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator).tolist()
    anomalies, masks, sources, kinds = [], [], [], []
    for n in range(count):
        source = order[n % len(order)]
        drawn = _resolved(kind, generator)
        anomaly, mask = synthesize(images[source], drawn, generator, jitter, images)
        anomalies.append(anomaly)
        masks.append(mask)
        sources.append(source)
        kinds.append(drawn)
    return torch.stack(anomalies), torch.stack(masks), sources, kinds
