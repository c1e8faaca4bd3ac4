"""Leather: pebbled brown grain, with MVTec's five leather defects."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from metricad.data.demo.primitives import (
    Category,
    FloatImage,
    bent_line,
    blob_weight,
    defect_centre,
    pixel_grid,
    slit,
    smooth_noise,
    smoothstep,
    stained,
)


def _worley(rng: np.random.Generator, y: np.ndarray, x: np.ndarray, cell: float) -> np.ndarray:
    """Distance to the nearest cell border (F2 - F1) of a jittered-grid Voronoi diagram."""
    gy, gx = np.floor(y / cell).astype(np.int32), np.floor(x / cell).astype(np.int32)
    # One cell of padding around the range the (warped) coordinates reach.
    lo_y, lo_x = gy.min() - 1, gx.min() - 1
    shape = (gy.max() - lo_y + 2, gx.max() - lo_x + 2)
    # Feature points in absolute coordinates, one per grid cell, flattened for np.take.
    rows, cols = np.indices(shape, dtype=np.float32)
    point_y = ((rows + lo_y + rng.uniform(0, 1, shape)) * cell).astype(np.float32).ravel()
    point_x = ((cols + lo_x + rng.uniform(0, 1, shape)) * cell).astype(np.float32).ravel()
    home = (gy - lo_y) * shape[1] + (gx - lo_x)
    first = np.full(y.shape, np.inf, np.float32)
    second = first.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            index = home + (dy * shape[1] + dx)
            squared = (np.take(point_y, index) - y) ** 2 + (np.take(point_x, index) - x) ** 2
            second = np.minimum(second, np.maximum(first, squared))
            first = np.minimum(first, squared)
    return np.sqrt(second) - np.sqrt(first)


def _leather(rng: np.random.Generator, size: int) -> FloatImage:
    """Brown leather: pebbled grain (Voronoi cells with creases at two scales), fine noise,
    embossed lighting and soft low-frequency shading."""
    scale = size / 256.0
    y, x = pixel_grid(size)
    # A gentle warp makes the cells irregular polygons instead of a jittered grid.
    wy = y + 3.0 * scale * smooth_noise(rng, size, 6)
    wx = x + 3.0 * scale * smooth_noise(rng, size, 6)
    small = _worley(rng, wy, wx, 8.0 * scale)
    large = _worley(rng, wy, wx, 28.0 * scale)
    # Rounded pebbles (height rises from their borders) cut by a coarser wrinkle network.
    height = (
        0.8 * np.tanh(small / (2.5 * scale))
        - 0.6 * np.exp(-large / (1.5 * scale))
        + 0.06 * rng.standard_normal((size, size)).astype(np.float32)
    )
    height = ndimage.gaussian_filter(height, 0.7 * scale)
    grad_y, grad_x = np.gradient(height)
    # Light from the top left: slopes facing it brighten; per-pixel slopes scale with 1/size.
    relief = 0.8 + 0.3 * height - (grad_y + grad_x) * 0.9 * scale
    shading = 1.0 + 0.06 * smooth_noise(rng, size, 3)
    brightness = rng.uniform(0.9, 1.1)
    warmth = rng.uniform(-0.06, 0.06)
    base = np.array([0.58 * (1 + warmth), 0.36, 0.23 * (1 - warmth)], np.float32) * brightness
    tone = (relief * shading)[..., None] * base
    return np.clip(tone, 0.0, 1.0).astype(np.float32)


def _color(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A stain of another hue (dark red, blue-grey, whitish or near black) with a soft edge."""
    size = image.shape[0]
    weight = blob_weight(rng, size, rng.uniform(0.035, 0.06) * size * scale, 0.02 * size * scale)
    stains = np.array(
        [[0.42, 0.10, 0.09], [0.22, 0.25, 0.36], [0.78, 0.70, 0.58], [0.16, 0.09, 0.06]],
        np.float32,
    )
    return stained(image, weight, stains[rng.integers(len(stains))], (0.7, 0.9), rng)


def _cut(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A thin dark slit, tapering at both ends, with a lighter rim."""
    profile = (0.4, 0.6, 0.2, 3.2, 1.5)
    core, rim = slit(rng, image.shape[0], (0.08, 0.13), 0.12, (1.0, 1.6), profile, scale)
    return image * (1 - 0.8 * core[..., None] + 0.3 * rim[..., None])


def _fold(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A longer soft crease band: grain pressed flat, dark on one side and light on the other,
    with a thin dark line along the ridge."""
    size = image.shape[0]
    distance, side, u = bent_line(rng, size, rng.uniform(0.18, 0.28) * size * scale, 0.2)
    half_width = rng.uniform(0.025, 0.04) * size * scale
    t = np.clip(side * distance / half_width, -1.0, 1.0)
    envelope = ((1 - t**2) ** 2 * np.clip(np.sin(np.pi * u), 0, 1) ** 0.6)[..., None]
    smoothed = ndimage.gaussian_filter(image, (0.006 * size, 0.006 * size, 0))
    pressed = image + 0.6 * envelope * (smoothed - image)
    profile = -np.sin(np.pi * t) * rng.uniform(0.4, 0.5) - 0.3 * np.exp(-((t / 0.2) ** 2))
    return pressed * (1 + profile[..., None] * envelope)


def _glue(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A glossy drop: grain flattened, lighter and slightly yellow, with a specular spot."""
    size = image.shape[0]
    radius = rng.uniform(0.035, 0.055) * size * scale
    weight = blob_weight(rng, size, radius, 0.015 * size * scale)[..., None]
    flat = ndimage.gaussian_filter(image, (0.012 * size, 0.012 * size, 0))
    # Lighter and yellower, with a slightly darker rim where the drop's edge refracts.
    rim = 1 - 0.6 * (4 * weight * (1 - weight))
    glossy = flat * np.array([1.35, 1.3, 1.12], np.float32) * rim
    # The highlight sits towards the light (top left) inside the drop.
    y, x = pixel_grid(size)
    cy, cx = ndimage.center_of_mass(weight[..., 0])
    spot_distance = np.hypot(y - cy + 0.35 * radius, x - cx + 0.35 * radius)
    spot = np.exp(-0.5 * (spot_distance / (0.3 * radius)) ** 2)
    glossy = glossy + 0.4 * spot[..., None]
    return image + rng.uniform(0.8, 0.95) * weight * (glossy - image)


def _poke(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A small dark round hole with a bright raised ring."""
    size = image.shape[0]
    radius = rng.uniform(0.012, 0.02) * size * scale
    cy, cx = defect_centre(rng, size, 2 * radius)
    y, x = pixel_grid(size)
    rho = np.hypot(y - cy, x - cx)
    hole = smoothstep(radius, 0.6 * radius, rho)
    ring = smoothstep(1.9 * radius, 1.3 * radius, rho) * smoothstep(0.6 * radius, radius, rho)
    return image * (1 - 0.85 * hole + 0.35 * ring)[..., None]


CATEGORY = Category(
    _leather, {"color": _color, "cut": _cut, "fold": _fold, "glue": _glue, "poke": _poke}
)
