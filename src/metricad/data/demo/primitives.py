"""What every demo category is drawn with: coordinate grids, smooth noise, blobs and curves
(the defects' shapes), and the Category record (a defect-free image and its defects)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

FloatImage = np.ndarray  # HxWx3 intensities in [0, 1]
# A defect: the image, the generator, and the scale of its size (1: as drawn at any image size;
# data.synthetic.defect_scale).
Defect = Callable[[FloatImage, np.random.Generator, float], FloatImage]


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of a size x size image."""
    axis = np.arange(size, dtype=np.float32)
    return np.meshgrid(axis, axis, indexing="ij")


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, unit-ish noise varying over about size / cells pixels."""
    # One spare cell on every side, cropped away: zoom is least smooth at the array's border.
    margin = size // cells
    coarse = ndimage.zoom(rng.standard_normal((cells + 3, cells + 3)), 8, order=3)
    # Cubic to 8x, then linear: smooth enough, and 3x faster than cubic all the way.
    fine = ndimage.zoom(coarse, (size + 2 * margin + 1) / coarse.shape[0], order=1)
    return fine[margin : margin + size, margin : margin + size].astype(np.float32)


def defect_centre(rng: np.random.Generator, size: int, reach: float) -> tuple[float, float]:
    """A defect centre at least `reach` pixels plus a margin away from every border."""
    margin = reach + 0.1 * size
    return tuple(rng.uniform(margin, size - margin, 2))


def smoothstep(edge0: float, edge1: float, value: np.ndarray) -> np.ndarray:
    t = np.clip((value - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blob_weight(
    rng: np.random.Generator,
    size: int,
    radius: float,
    soft: float,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """Weight in [0, 1] of an irregular round blob: 1 inside, a soft edge, exactly 0 outside.
    Centred at `centre`, or anywhere away from the borders when None."""
    # Only drawn when not given: the textures' draws (and so their bytes) stay as they were.
    cy, cx = defect_centre(rng, size, radius * 1.4) if centre is None else centre
    y, x = pixel_grid(size)
    angle = np.arctan2(y - cy, x - cx)
    rho = np.hypot(y - cy, x - cx)
    # A few random harmonics turn the circle into a stain-like outline.
    outline = np.ones_like(angle)
    for k in (2, 3, 5):
        outline += rng.uniform(0.04, 0.12) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return smoothstep(0.0, soft, radius * outline - rho)


def bent_line(
    rng: np.random.Generator, size: int, length: float, bend: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gently bent line of random position and angle: for every pixel its distance to the
    line, the signed side, and its position u in [0, 1] along the line."""
    cy, cx = defect_centre(rng, size, length / 2)
    theta = rng.uniform(0, np.pi)
    u = np.linspace(0.0, 1.0, 128)
    along = (u - 0.5) * length
    across = bend * length * rng.uniform(-1, 1) * (1 - (2 * u - 1) ** 2)
    sin, cos = np.sin(theta), np.cos(theta)
    points = np.stack([cy + along * sin + across * cos, cx + along * cos - across * sin], axis=1)
    y, x = pixel_grid(size)
    pixels = np.stack([y.ravel(), x.ravel()], axis=1)
    distance, nearest = cKDTree(points).query(pixels)
    tangent = np.gradient(points, axis=0)[nearest]
    offset = pixels - points[nearest]
    side = np.sign(tangent[:, 0] * offset[:, 1] - tangent[:, 1] * offset[:, 0])
    return tuple(a.reshape(size, size).astype(np.float32) for a in (distance, side, u[nearest]))


def contrasting(rng: np.random.Generator, image: FloatImage, colours: np.ndarray) -> np.ndarray:
    """One of `colours`, drawn among those that stand out from the image's mean colour."""
    mean = image.reshape(-1, 3).mean(axis=0)
    distance = np.linalg.norm(colours - mean, axis=1)
    return colours[rng.choice(np.flatnonzero(distance > 0.3))]


def stained(
    image: FloatImage,
    weight: np.ndarray,
    stain: np.ndarray,
    strength: tuple[float, float],
    rng: np.random.Generator,
) -> FloatImage:
    """`image` stained with colour `stain` where `weight` (0..1) is set, at a drawn strength.
    Multiplying by the stain/image colour ratio keeps the grain visible through the stain."""
    tint = stain / image.reshape(-1, 3).mean(axis=0)
    amount = rng.uniform(*strength) * weight[..., None]
    return image * (1 - amount + amount * tint)


def slit(
    rng: np.random.Generator,
    size: int,
    length: tuple[float, float],
    bend: float,
    width: tuple[float, float],
    profile: tuple[float, float, float, float, float],
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The core and rim weights of a slit along a bent line, tapering at both ends: `length`
    (fraction of the side) and `width` (pixels at 256 px, at least half a pixel) are drawn
    from their ranges, both times `scale`; `profile` = (taper exponent, core outer and inner
    edge, rim outer and inner edge), the edges in widths and half-widths."""
    distance, _, u = bent_line(rng, size, rng.uniform(*length) * size * scale, bend)
    full = rng.uniform(*width) * max(size / 256.0, 0.5) * scale
    taper, outer, inner, rim_outer, rim_inner = profile
    half_width = full * np.clip(np.sin(np.pi * u), 0, 1) ** taper
    core = smoothstep(half_width + outer * full, half_width - inner * full, distance)
    rim = smoothstep(rim_outer * half_width + outer * full, rim_inner * half_width, distance)
    return core, rim - core


@dataclass(frozen=True)
class Category:
    """A category: its defect-free image (a texture, or an object such as the bottle) and its
    defects by MVTec's folder names."""

    base: Callable[[np.random.Generator, int], FloatImage]
    defects: dict[str, Defect]
