"""Carpet: a tufted woven pile, with MVTec's five carpet defects."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from metricad.data.demo.primitives import (
    Category,
    FloatImage,
    bent_line,
    blob_weight,
    contrasting,
    pixel_grid,
    slit,
    smooth_noise,
    smoothstep,
    stained,
)


def _carpet(rng: np.random.Generator, size: int) -> FloatImage:
    """Tufted carpet: a staggered lattice of small tilted loops (herringbone rows) in a grey-blue
    or beige yarn, each tuft a little different in tone, with fibre fuzz, raking light from the
    top left and soft low-frequency shading."""
    scale = size / 256.0
    pitch = rng.uniform(8.5, 10.5) * scale
    y, x = pixel_grid(size)
    # A slight warp: the rows wander as in a real, hand-laid pile.
    wy = y / pitch + 0.12 * smooth_noise(rng, size, 5)
    wx = x / pitch + 0.12 * smooth_noise(rng, size, 5)
    row = np.floor(wy)
    odd = row % 2
    # Brick lattice: odd rows shifted by half a tuft; (fy, fx) about [-0.5, 0.5) inside a tuft.
    col = np.floor(wx + 0.5 * odd)
    # Per-tuft draws (tone, yarn tint, lean, offset), looked up by each pixel's tuft.
    r = (row - row.min()).astype(np.int32)
    c = (col - col.min()).astype(np.int32)
    table = (int(r.max()) + 1, int(c.max()) + 1)
    tone = rng.normal(1.0, 0.07, table).astype(np.float32)[r, c]
    tint = rng.normal(0.0, 0.012, (*table, 3)).astype(np.float32)[r, c]
    offset = rng.normal(0.0, 0.04, (2, *table)).astype(np.float32)[:, r, c]
    fy = wy - row - 0.5 + offset[0]
    fx = wx + 0.5 * odd - col - 0.5 + offset[1]
    # Tufts lean one way in even rows and the other way in odd rows, each a little differently.
    lean = np.where(odd == 1, -0.55, 0.55) + rng.normal(0.0, 0.12, table)[r, c]
    lean = lean.astype(np.float32)
    along = fx * np.cos(lean) + fy * np.sin(lean)
    across = fy * np.cos(lean) - fx * np.sin(lean)
    bump = np.clip(1 - (along / 0.7) ** 2 - (across / 0.42) ** 2, 0, 1)
    # Fibres run along each tuft: fine ridges across it, plus per-pixel fuzz.
    fibres = 0.12 * np.cos(2 * np.pi * across / 0.21 + rng.uniform(0, 2 * np.pi))
    fuzz = 0.1 * rng.standard_normal((size, size)).astype(np.float32)
    height = np.sqrt(bump) * (tone + fibres) + fuzz
    height = ndimage.gaussian_filter(height, 0.7 * scale)
    grad_y, grad_x = np.gradient(height)
    relief = 0.62 + 0.4 * height - (grad_y + grad_x) * 0.12 * pitch
    shading = 1.0 + 0.07 * smooth_noise(rng, size, 3)
    yarns = np.array([[0.50, 0.55, 0.64], [0.66, 0.59, 0.48], [0.56, 0.57, 0.60]], np.float32)
    yarn = yarns[rng.integers(len(yarns))] * rng.uniform(0.9, 1.1)
    yarn = yarn * (1 + rng.uniform(-0.04, 0.04, 3)).astype(np.float32)
    image = (relief * shading)[..., None] * (yarn + tint)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _carpet_color(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A dye stain soaked into the pile: the tufts stay visible through a strong other hue."""
    size = image.shape[0]
    weight = blob_weight(rng, size, rng.uniform(0.035, 0.06) * size * scale, 0.02 * size * scale)
    stains = np.array(
        [
            [0.55, 0.12, 0.10],  # red wine
            [0.20, 0.35, 0.15],  # green
            [0.15, 0.22, 0.55],  # blue ink
            [0.70, 0.55, 0.15],  # yellow
            [0.30, 0.18, 0.10],  # coffee
        ],
        np.float32,
    )
    return stained(image, weight, contrasting(rng, image, stains), (0.75, 0.9), rng)


def _carpet_cut(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A straight slit through the pile: the dark backing shows, cut fibre ends light its rims."""
    profile = (0.3, 0.5, 0.3, 2.5, 1.2)
    core, rim = slit(rng, image.shape[0], (0.1, 0.16), 0.02, (2.0, 2.8), profile, scale)
    return image * (1 - 0.85 * core[..., None] + 0.25 * rim[..., None])


def _carpet_hole(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A small round gap in the pile: near-black backing inside, a shadowed, frayed rim."""
    size = image.shape[0]
    radius = rng.uniform(0.022, 0.034) * size * scale
    gap = blob_weight(rng, size, radius, 0.25 * radius)
    # The tufts around the gap lean into it: a soft shadow a little past its edge.
    shadow = np.clip(ndimage.gaussian_filter(gap, 0.3 * radius) - gap, 0, 1)[..., None]
    gap = gap[..., None]
    backing = np.array([0.07, 0.06, 0.06], np.float32) + 0.15 * image
    return (image + gap * (backing - image)) * (1 - 0.5 * shadow)


def _carpet_metal(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A small metallic speck lying on the pile: steel grey, brushed bright-to-dark across it,
    a white specular highlight towards the light, a dark edge and a faint contact shadow."""
    size = image.shape[0]
    radius = rng.uniform(0.025, 0.035) * size * scale
    weight = blob_weight(rng, size, radius, 0.2 * radius)
    y, x = pixel_grid(size)
    cy, cx = ndimage.center_of_mass(weight)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = ((y - cy) * np.sin(angle) + (x - cx) * np.cos(angle)) / radius
    grey = rng.uniform(0.3, 0.42) + 0.2 * np.clip(ramp, -1, 1)
    spot = np.hypot(y - cy + 0.3 * radius, x - cx + 0.3 * radius) / (0.28 * radius)
    metal = grey + 0.7 * np.exp(-0.5 * spot**2)
    edge = 1 - 0.6 * (4 * weight * (1 - weight))
    metal = (metal * edge)[..., None] * np.array([0.97, 0.99, 1.03], np.float32)
    shadow = np.clip(ndimage.gaussian_filter(weight, 0.25 * radius) - weight, 0, 1)[..., None]
    weight = weight[..., None]
    return (image + weight * (metal - image)) * (1 - 0.6 * shadow)


def _carpet_thread(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A loose thread of another colour lying on the pile: a thin wavy line, round in section
    (lit from one side) over a faint shadow."""
    size = image.shape[0]
    length = rng.uniform(0.18, 0.28) * size * scale
    distance, side, u = bent_line(rng, size, length, 0.25)
    # Waves along the bent line: shift the signed distance by a sine of the position along it.
    wave = 0.05 * length * np.sin(2 * np.pi * rng.uniform(1.0, 2.0) * u + rng.uniform(0, 6.3))
    signed = side * distance - wave
    distance = np.abs(signed)
    half_width = rng.uniform(1.3, 1.8) * max(size / 256.0, 0.5) * scale
    body = smoothstep(half_width + 0.6, half_width - 0.4, distance)[..., None]
    t = np.clip(signed / half_width, -1, 1)
    shade = (0.8 + 0.3 * np.sqrt(1 - t**2) - 0.15 * t)[..., None]
    colours = np.array(
        [
            [0.85, 0.82, 0.75],  # off-white
            [0.12, 0.10, 0.09],  # black
            [0.70, 0.12, 0.10],  # red
            [0.15, 0.25, 0.60],  # blue
            [0.80, 0.65, 0.15],  # yellow
        ],
        np.float32,
    )
    thread = contrasting(rng, image, colours) * shade
    shadow = smoothstep(2 * half_width + 1.0, half_width, distance)[..., None] * (1 - body)
    return (image + body * (thread - image)) * (1 - 0.3 * shadow)


CATEGORY = Category(
    _carpet,
    {
        "color": _carpet_color,
        "cut": _carpet_cut,
        "hole": _carpet_hole,
        "metal_contamination": _carpet_metal,
        "thread": _carpet_thread,
    },
)
