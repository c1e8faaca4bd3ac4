"""A synthetic stand-in for MVTec AD: procedural leather and carpet (textures, each with MVTec's
five defect kinds) and a bottle (an object, with MVTec's three bottle defects), with their masks,
written in MVTec's exact folder layout, so the pipeline runs without the licensed data set.

A category is a base-image function plus its defect functions (see _TEXTURES). Every image
draws from its own generator seeded by (seed, category, kind, index), so one seed always gives
byte-identical files and changing one count leaves the other images unchanged.
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from tqdm import tqdm

from metricad.errors import MetricadError
from metricad.files import write_json
from metricad.images import save_png
from metricad.layout import DEFECT_FREE

# Counts per folder: keys are "train_good", "test_good" and the category's defect names.
DEFAULT_GOOD_COUNTS = {"train_good": 40, "test_good": 10}
DEFAULT_DEFECT_COUNT = 8
# Written inside every generated tree; a folder without it is never replaced (it may be real data).
MARKER = ".synthetic.json"
# Below this the defects shrink to a pixel or two and the grain to noise.
MIN_IMAGE_SIZE = 32
# An alteration below this (0..1 intensity; 3 grey levels, far below the grain's own contrast)
# is not part of the mask.
_MASK_THRESHOLD = 3.0 / 255.0

FloatImage = np.ndarray  # HxWx3 intensities in [0, 1]
Defect = Callable[[FloatImage, np.random.Generator], FloatImage]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of a size x size image."""
    axis = np.arange(size, dtype=np.float32)
    return np.meshgrid(axis, axis, indexing="ij")


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, unit-ish noise varying over about size / cells pixels."""
    # One spare cell on every side, cropped away: zoom is least smooth at the array's border.
    margin = size // cells
    coarse = ndimage.zoom(rng.standard_normal((cells + 3, cells + 3)), 8, order=3)
    # Cubic to 8x, then linear: smooth enough, and 3x faster than cubic all the way.
    fine = ndimage.zoom(coarse, (size + 2 * margin + 1) / coarse.shape[0], order=1)
    return fine[margin : margin + size, margin : margin + size].astype(np.float32)


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
    y, x = _grid(size)
    # A gentle warp makes the cells irregular polygons instead of a jittered grid.
    wy = y + 3.0 * scale * _smooth_noise(rng, size, 6)
    wx = x + 3.0 * scale * _smooth_noise(rng, size, 6)
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
    shading = 1.0 + 0.06 * _smooth_noise(rng, size, 3)
    brightness = rng.uniform(0.9, 1.1)
    warmth = rng.uniform(-0.06, 0.06)
    base = np.array([0.58 * (1 + warmth), 0.36, 0.23 * (1 - warmth)], np.float32) * brightness
    tone = (relief * shading)[..., None] * base
    return np.clip(tone, 0.0, 1.0).astype(np.float32)


def _centre(rng: np.random.Generator, size: int, reach: float) -> tuple[float, float]:
    """A defect centre at least `reach` pixels plus a margin away from every border."""
    margin = reach + 0.1 * size
    return tuple(rng.uniform(margin, size - margin, 2))


def _smoothstep(edge0: float, edge1: float, value: np.ndarray) -> np.ndarray:
    t = np.clip((value - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _blob(
    rng: np.random.Generator,
    size: int,
    radius: float,
    soft: float,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """Weight in [0, 1] of an irregular round blob: 1 inside, a soft edge, exactly 0 outside.
    Centred at `centre`, or anywhere away from the borders when None."""
    # Only drawn when not given: the textures' draws (and so their bytes) stay as they were.
    cy, cx = _centre(rng, size, radius * 1.4) if centre is None else centre
    y, x = _grid(size)
    angle = np.arctan2(y - cy, x - cx)
    rho = np.hypot(y - cy, x - cx)
    # A few random harmonics turn the circle into a stain-like outline.
    outline = np.ones_like(angle)
    for k in (2, 3, 5):
        outline += rng.uniform(0.04, 0.12) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return _smoothstep(0.0, soft, radius * outline - rho)


def _curve(
    rng: np.random.Generator, size: int, length: float, bend: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gently bent line of random position and angle: for every pixel its distance to the
    line, the signed side, and its position u in [0, 1] along the line."""
    cy, cx = _centre(rng, size, length / 2)
    theta = rng.uniform(0, np.pi)
    u = np.linspace(0.0, 1.0, 128)
    along = (u - 0.5) * length
    across = bend * length * rng.uniform(-1, 1) * (1 - (2 * u - 1) ** 2)
    sin, cos = np.sin(theta), np.cos(theta)
    points = np.stack([cy + along * sin + across * cos, cx + along * cos - across * sin], axis=1)
    y, x = _grid(size)
    pixels = np.stack([y.ravel(), x.ravel()], axis=1)
    distance, nearest = cKDTree(points).query(pixels)
    tangent = np.gradient(points, axis=0)[nearest]
    offset = pixels - points[nearest]
    side = np.sign(tangent[:, 0] * offset[:, 1] - tangent[:, 1] * offset[:, 0])
    return tuple(a.reshape(size, size).astype(np.float32) for a in (distance, side, u[nearest]))


def _color(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A stain of another hue (dark red, blue-grey, whitish or near black) with a soft edge."""
    size = image.shape[0]
    weight = _blob(rng, size, rng.uniform(0.035, 0.06) * size, 0.02 * size)
    stains = np.array(
        [[0.42, 0.10, 0.09], [0.22, 0.25, 0.36], [0.78, 0.70, 0.58], [0.16, 0.09, 0.06]],
        np.float32,
    )
    stain = stains[rng.integers(len(stains))]
    # Multiplying by the stain/leather colour ratio keeps the grain visible through the stain.
    tint = stain / image.reshape(-1, 3).mean(axis=0)
    strength = rng.uniform(0.7, 0.9) * weight[..., None]
    return image * (1 - strength + strength * tint)


def _cut(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A thin dark slit, tapering at both ends, with a lighter rim."""
    size = image.shape[0]
    scale = size / 256.0
    distance, _, u = _curve(rng, size, rng.uniform(0.08, 0.13) * size, 0.12)
    # At least half a pixel wide, so that small images still show the slit.
    width = rng.uniform(1.0, 1.6) * max(scale, 0.5)
    half_width = width * np.clip(np.sin(np.pi * u), 0, 1) ** 0.4
    core = _smoothstep(half_width + 0.6 * width, half_width - 0.2 * width, distance)
    rim = _smoothstep(3.2 * half_width + 0.6 * width, 1.5 * half_width, distance) - core
    return image * (1 - 0.8 * core[..., None] + 0.3 * rim[..., None])


def _fold(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A longer soft crease band: grain pressed flat, dark on one side and light on the other,
    with a thin dark line along the ridge."""
    size = image.shape[0]
    distance, side, u = _curve(rng, size, rng.uniform(0.18, 0.28) * size, 0.2)
    half_width = rng.uniform(0.025, 0.04) * size
    t = np.clip(side * distance / half_width, -1.0, 1.0)
    envelope = ((1 - t**2) ** 2 * np.clip(np.sin(np.pi * u), 0, 1) ** 0.6)[..., None]
    smoothed = ndimage.gaussian_filter(image, (0.006 * size, 0.006 * size, 0))
    pressed = image + 0.6 * envelope * (smoothed - image)
    profile = -np.sin(np.pi * t) * rng.uniform(0.4, 0.5) - 0.3 * np.exp(-((t / 0.2) ** 2))
    return pressed * (1 + profile[..., None] * envelope)


def _glue(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A glossy drop: grain flattened, lighter and slightly yellow, with a specular spot."""
    size = image.shape[0]
    radius = rng.uniform(0.035, 0.055) * size
    weight = _blob(rng, size, radius, 0.015 * size)[..., None]
    flat = ndimage.gaussian_filter(image, (0.012 * size, 0.012 * size, 0))
    # Lighter and yellower, with a slightly darker rim where the drop's edge refracts.
    rim = 1 - 0.6 * (4 * weight * (1 - weight))
    glossy = flat * np.array([1.35, 1.3, 1.12], np.float32) * rim
    # The highlight sits towards the light (top left) inside the drop.
    y, x = _grid(size)
    cy, cx = ndimage.center_of_mass(weight[..., 0])
    spot_distance = np.hypot(y - cy + 0.35 * radius, x - cx + 0.35 * radius)
    spot = np.exp(-0.5 * (spot_distance / (0.3 * radius)) ** 2)
    glossy = glossy + 0.4 * spot[..., None]
    return image + rng.uniform(0.8, 0.95) * weight * (glossy - image)


def _poke(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A small dark round hole with a bright raised ring."""
    size = image.shape[0]
    radius = rng.uniform(0.012, 0.02) * size
    cy, cx = _centre(rng, size, 2 * radius)
    y, x = _grid(size)
    rho = np.hypot(y - cy, x - cx)
    hole = _smoothstep(radius, 0.6 * radius, rho)
    ring = _smoothstep(1.9 * radius, 1.3 * radius, rho) * _smoothstep(0.6 * radius, radius, rho)
    return image * (1 - 0.85 * hole + 0.35 * ring)[..., None]


def _carpet(rng: np.random.Generator, size: int) -> FloatImage:
    """Tufted carpet: a staggered lattice of small tilted loops (herringbone rows) in a grey-blue
    or beige yarn, each tuft a little different in tone, with fibre fuzz, raking light from the
    top left and soft low-frequency shading."""
    scale = size / 256.0
    pitch = rng.uniform(8.5, 10.5) * scale
    y, x = _grid(size)
    # A slight warp: the rows wander as in a real, hand-laid pile.
    wy = y / pitch + 0.12 * _smooth_noise(rng, size, 5)
    wx = x / pitch + 0.12 * _smooth_noise(rng, size, 5)
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
    shading = 1.0 + 0.07 * _smooth_noise(rng, size, 3)
    yarns = np.array([[0.50, 0.55, 0.64], [0.66, 0.59, 0.48], [0.56, 0.57, 0.60]], np.float32)
    yarn = yarns[rng.integers(len(yarns))] * rng.uniform(0.9, 1.1)
    yarn = yarn * (1 + rng.uniform(-0.04, 0.04, 3)).astype(np.float32)
    image = (relief * shading)[..., None] * (yarn + tint)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _contrasting(rng: np.random.Generator, image: FloatImage, colours: np.ndarray) -> np.ndarray:
    """One of `colours`, drawn among those that stand out from the image's mean colour."""
    mean = image.reshape(-1, 3).mean(axis=0)
    distance = np.linalg.norm(colours - mean, axis=1)
    return colours[rng.choice(np.flatnonzero(distance > 0.3))]


def _carpet_color(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A dye stain soaked into the pile: the tufts stay visible through a strong other hue."""
    size = image.shape[0]
    weight = _blob(rng, size, rng.uniform(0.035, 0.06) * size, 0.02 * size)
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
    stain = _contrasting(rng, image, stains)
    tint = stain / image.reshape(-1, 3).mean(axis=0)
    strength = rng.uniform(0.75, 0.9) * weight[..., None]
    return image * (1 - strength + strength * tint)


def _carpet_cut(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A straight slit through the pile: the dark backing shows, cut fibre ends light its rims."""
    size = image.shape[0]
    scale = size / 256.0
    distance, _, u = _curve(rng, size, rng.uniform(0.1, 0.16) * size, 0.02)
    width = rng.uniform(2.0, 2.8) * max(scale, 0.5)
    half_width = width * np.clip(np.sin(np.pi * u), 0, 1) ** 0.3
    core = _smoothstep(half_width + 0.5 * width, half_width - 0.3 * width, distance)
    rim = _smoothstep(2.5 * half_width + 0.5 * width, 1.2 * half_width, distance) - core
    return image * (1 - 0.85 * core[..., None] + 0.25 * rim[..., None])


def _carpet_hole(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A small round gap in the pile: near-black backing inside, a shadowed, frayed rim."""
    size = image.shape[0]
    radius = rng.uniform(0.022, 0.034) * size
    gap = _blob(rng, size, radius, 0.25 * radius)
    # The tufts around the gap lean into it: a soft shadow a little past its edge.
    shadow = np.clip(ndimage.gaussian_filter(gap, 0.3 * radius) - gap, 0, 1)[..., None]
    gap = gap[..., None]
    backing = np.array([0.07, 0.06, 0.06], np.float32) + 0.15 * image
    return (image + gap * (backing - image)) * (1 - 0.5 * shadow)


def _carpet_metal(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A small metallic speck lying on the pile: steel grey, brushed bright-to-dark across it,
    a white specular highlight towards the light, a dark edge and a faint contact shadow."""
    size = image.shape[0]
    radius = rng.uniform(0.025, 0.035) * size
    weight = _blob(rng, size, radius, 0.2 * radius)
    y, x = _grid(size)
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


def _carpet_thread(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A loose thread of another colour lying on the pile: a thin wavy line, round in section
    (lit from one side) over a faint shadow."""
    size = image.shape[0]
    scale = size / 256.0
    length = rng.uniform(0.18, 0.28) * size
    distance, side, u = _curve(rng, size, length, 0.25)
    # Waves along the bent line: shift the signed distance by a sine of the position along it.
    wave = 0.05 * length * np.sin(2 * np.pi * rng.uniform(1.0, 2.0) * u + rng.uniform(0, 6.3))
    signed = side * distance - wave
    distance = np.abs(signed)
    half_width = rng.uniform(1.3, 1.8) * max(scale, 0.5)
    body = _smoothstep(half_width + 0.6, half_width - 0.4, distance)[..., None]
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
    thread = _contrasting(rng, image, colours) * shade
    shadow = _smoothstep(2 * half_width + 1.0, half_width, distance)[..., None] * (1 - body)
    return (image + body * (thread - image)) * (1 - 0.3 * shadow)


# The bottle's rings, as fractions of its outer radius: the dark mouth inside _MOUTH, the bright
# lip from _MOUTH to _LIP, the glass shoulder out to 1. Fixed, so that the defects find the lip.
_MOUTH, _LIP = 0.34, 0.46
# Grey level between the background (about 0.05) and the darkest glass (about 0.2).
_BOTTLE_THRESHOLD = 0.12


def _bottle(rng: np.random.Generator, size: int) -> FloatImage:
    """A glass bottle seen from straight above on a dark background: a dark mouth, a bright lip,
    a grey-green shoulder with a bright outer edge, lit from the top left. Good images differ
    only a little: position, scale, light direction and brightness."""
    y, x = _grid(size)
    cy, cx = size / 2 + rng.uniform(-0.02, 0.02, 2) * size
    radius = rng.uniform(0.38, 0.41) * size
    t = np.hypot(y - cy, x - cx) / radius
    # +1 on the side facing the light (top left, give or take a little), -1 away from it.
    light = -0.75 * np.pi + rng.uniform(-0.3, 0.3)
    facing = np.cos(np.arctan2(y - cy, x - cx) - light)
    brightness = rng.uniform(0.93, 1.07)
    # Slow waviness of the glass and fine sensor noise, so no two good images are equal.
    wobble = _smooth_noise(rng, size, 5)
    noise = rng.standard_normal((size, size)).astype(np.float32)

    # The inside of the neck: dark, with the bottle's bottom a faint ring far below.
    mouth = 0.07 + 0.1 * np.exp(-(((t - 0.17) / 0.05) ** 2))
    # The shoulder brightens towards the lip and on its lit side; the edge catches the light.
    shoulder = 0.27 + 0.12 * _smoothstep(0.9, 0.5, t) + 0.05 * facing + 0.012 * wobble
    edge = 0.3 * np.exp(-(((t - 0.965) / 0.02) ** 2)) * (0.7 + 0.3 * facing)
    # The lip: a bright ring, brightest towards the light, darker at its inner bevel.
    lip_weight = _smoothstep(_MOUTH - 0.02, _MOUTH + 0.02, t) * _smoothstep(_LIP + 0.02, _LIP, t)
    lip = 0.66 + 0.16 * facing - 0.2 * np.exp(-(((t - _MOUTH - 0.02) / 0.025) ** 2))
    glass = np.where(t < _MOUTH, mouth, shoulder + edge)
    glass = glass + lip_weight * (lip - glass)
    # About a pixel of soft outline, as a lens gives.
    inside = _smoothstep(1.0 + 0.6 / radius, 1.0 - 0.6 / radius, t)
    background = 0.05 + 0.008 * wobble
    grey = (background + inside * (glass - background)) * brightness + 0.01 * noise
    # Glass is slightly green; the background is neutral.
    tint = 1 + inside[..., None] * np.array([-0.06, 0.0, -0.1], np.float32)
    return np.clip(grey[..., None] * tint, 0.0, 1.0).astype(np.float32)


def _bottle_geometry(image: FloatImage) -> tuple[float, float, float]:
    """The bottle's centre (y, x) and outer radius, measured on its image: everything brighter
    than the background, the dark mouth filled in."""
    labels, _ = ndimage.label(image.mean(axis=2) > _BOTTLE_THRESHOLD)
    # The largest bright region is the bottle; a stray bright noise pixel is not.
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    bottle = ndimage.binary_fill_holes(labels == np.argmax(areas))
    cy, cx = ndimage.center_of_mass(bottle)
    return float(cy), float(cx), float(np.sqrt(bottle.sum() / np.pi))


def _on_bottle(
    rng: np.random.Generator, geometry: tuple[float, float, float], low: float, high: float
) -> tuple[float, float]:
    """A point at a random angle, between `low` and `high` bottle radii from its centre."""
    cy, cx, radius = geometry
    angle = rng.uniform(0, 2 * np.pi)
    rho = rng.uniform(low, high) * radius
    return cy + rho * np.sin(angle), cx + rho * np.cos(angle)


def _broken(
    image: FloatImage, rng: np.random.Generator, reach: float, low: float, high: float
) -> FloatImage:
    """A piece broken out of the lip: a jagged notch down to the dark inside, faceted shards
    glinting in it, and a bright fracture edge around it."""
    size = image.shape[0]
    centre = _on_bottle(rng, _bottle_geometry(image), low, high)
    # At least a pixel and a half, so that small images still show the chip.
    radius = max(reach * size, 1.5)
    blob = _blob(rng, size, radius, 0.5 * radius, centre)
    # Jagged: the outline follows a noisy level inside the blob's wide soft edge; the noise
    # fades out at both ends of the edge, so the notch stays exactly 0 outside the blob.
    tear = 0.5 * _smooth_noise(rng, size, 40) * 4 * blob * (1 - blob)
    notch = _smoothstep(0.4, 0.6, blob + tear)
    # Around the notch, the fracture face: a thin edge catching the light.
    fracture = np.clip(_smoothstep(0.1, 0.4, blob + tear) - notch, 0, 1)[..., None]
    # Inside, the dark neck shows between a few faint shards.
    shards = 0.07 + 0.12 * np.clip(_smooth_noise(rng, size, 24), 0, None)
    image = image + 0.7 * fracture * (0.9 - image)
    return image + notch[..., None] * (shards[..., None] - image)


def _bottle_broken_large(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A large piece broken out of the lip, reaching into the neck and onto the shoulder."""
    # Centred towards the lip's inner edge: the dark neck is little changed, so the visible
    # notch would otherwise sit mostly on the shoulder.
    return _broken(image, rng, rng.uniform(0.045, 0.065), _MOUTH, _LIP - 0.04)


def _bottle_broken_small(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A small chip out of the lip."""
    return _broken(image, rng, rng.uniform(0.025, 0.035), _MOUTH + 0.05, _LIP - 0.03)


def _bottle_contamination(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """A foreign particle on the glass shoulder: dark dirt, rust or a whitish flake, uneven in
    tone, with a darker rim."""
    size = image.shape[0]
    reach = rng.uniform(0.025, 0.042) * size
    # Far enough inside the outer edge that the whole particle (up to 1.4 reaches) is on glass.
    geometry = _bottle_geometry(image)
    cy, cx = _on_bottle(rng, geometry, _LIP + 0.1, 1 - 1.5 * reach / geometry[2])
    weight = _blob(rng, size, reach, 0.3 * reach, (cy, cx))
    colours = np.array(
        [
            [0.05, 0.04, 0.03],  # dark dirt
            [0.42, 0.20, 0.08],  # rust
            [0.85, 0.82, 0.74],  # whitish flake
        ],
        np.float32,
    )
    # Standing out from the glass where it lies (a particle may be only a pixel or two).
    colour = _contrasting(rng, image[round(cy), round(cx)], colours)
    grain = 1 + 0.15 * _smooth_noise(rng, size, 40)[..., None]
    rim = 1 - 0.5 * (4 * weight * (1 - weight))[..., None]
    weight = weight[..., None]
    return image + weight * (colour * grain * rim - image)


@dataclass(frozen=True)
class _Texture:
    """A category: its defect-free image (a texture, or an object such as the bottle) and its
    defects by MVTec's folder names."""

    base: Callable[[np.random.Generator, int], FloatImage]
    defects: dict[str, Defect]


_TEXTURES = {
    "leather": _Texture(
        _leather, {"color": _color, "cut": _cut, "fold": _fold, "glue": _glue, "poke": _poke}
    ),
    "carpet": _Texture(
        _carpet,
        {
            "color": _carpet_color,
            "cut": _carpet_cut,
            "hole": _carpet_hole,
            "metal_contamination": _carpet_metal,
            "thread": _carpet_thread,
        },
    ),
    "bottle": _Texture(
        _bottle,
        {
            "broken_large": _bottle_broken_large,
            "broken_small": _bottle_broken_small,
            "contamination": _bottle_contamination,
        },
    ),
}
SYNTHETIC_DEFECTS: dict[str, tuple[str, ...]] = {
    name: tuple(texture.defects) for name, texture in _TEXTURES.items()
}


class Sample(NamedTuple):
    """One synthetic image: the defect-free texture, the image, and its mask (None if good)."""

    clean: np.ndarray
    image: np.ndarray
    mask: np.ndarray | None


def _texture(category: str) -> _Texture:
    if category not in _TEXTURES:
        raise MetricadError(
            f"data.category: no synthetic data for {category!r} (supported: {', '.join(_TEXTURES)})"
        )
    return _TEXTURES[category]


def _to_uint8(image: FloatImage) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def render_sample(
    category: str, kind: str, seed: int, index: int, image_size: int, split: str = "train"
) -> Sample:
    """Render image `index` of `kind` ("good" or a defect name) in `split` ("train" or "test"),
    deterministic in its arguments."""
    texture = _texture(category)
    # Good test images draw from their own key: under the train key, test/good/000.png was a
    # copy of train/good/000.png, and every score was measured on images seen in training.
    name = f"test/{kind}" if kind == DEFECT_FREE and split == "test" else kind
    key = [seed, zlib.crc32(category.encode()), zlib.crc32(name.encode()), index]
    rng = np.random.default_rng(key)
    clean = texture.base(rng, image_size)
    if kind == DEFECT_FREE:
        return Sample(_to_uint8(clean), _to_uint8(clean), None)
    altered = texture.defects[kind](clean, rng)
    # Filled: where an alteration's profile crosses zero inside the defect is still defect.
    mask = ndimage.binary_fill_holes(np.abs(altered - clean).max(axis=2) > _MASK_THRESHOLD)
    return Sample(_to_uint8(clean), _to_uint8(altered), mask)


def _check_arguments(
    category: str, seed: int, image_size: int, counts: dict[str, int] | None
) -> dict[str, int]:
    """Validate the arguments; return the full counts (defaults overridden by `counts`)."""
    defects = _texture(category).defects
    if not _count_like(seed):
        raise MetricadError(f"synthetic seed must be a non-negative integer, got {seed!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise MetricadError(
            f"synthetic image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}"
        )
    full = DEFAULT_GOOD_COUNTS | dict.fromkeys(defects, DEFAULT_DEFECT_COUNT)
    for key, value in (counts or {}).items():
        if key not in full:
            raise MetricadError(
                f"synthetic counts: unknown key {key!r} (allowed: {', '.join(full)})"
            )
        if not _count_like(value):
            raise MetricadError(
                f"synthetic counts: {key} must be a non-negative integer, got {value!r}"
            )
        full[key] = value
    return full


def _count_like(value: object) -> bool:
    # bool is an int subclass, but `True` images is surely a mistake in the parameters.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def generate_synthetic(
    root: str | Path,
    category: str = "leather",
    seed: int = 0,
    image_size: int = 256,
    counts: dict[str, int] | None = None,
    progress: bool = True,
) -> None:
    """Write root/category/{train,test,ground_truth}/... in MVTec AD's layout.

    Files are named 000.png, 001.png, ...; masks <name>_mask.png are 0/255 L. The tree is built
    in a hidden temporary folder and renamed into place when complete; an existing tree is
    replaced only if it was written by this function (it carries the MARKER file) or is empty.
    """
    full = _check_arguments(category, seed, image_size, counts)
    root = Path(root)
    target = root / category
    if target.exists() and not _replaceable(target):
        raise MetricadError(
            f"{target}: exists and was not written by the synthetic generator "
            f"(no {MARKER}); refusing to replace it"
        )
    jobs = [("train", DEFECT_FREE, i) for i in range(full["train_good"])]
    jobs += [("test", DEFECT_FREE, i) for i in range(full["test_good"])]
    for defect in _texture(category).defects:
        jobs += [("test", defect, i) for i in range(full[defect])]

    # Hidden names: scan_mvtec and users never mistake the unfinished tree for a category.
    building = root / f".{category}.building-{os.getpid()}"
    retired = root / f".{category}.replaced-{os.getpid()}"
    for leftover in (building, retired):  # from a killed run that had the same process id
        shutil.rmtree(leftover, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        for split, kind, index in tqdm(jobs, desc="synthetic", disable=not progress):
            sample = render_sample(category, kind, seed, index, image_size, split)
            save_png(sample.image, building / split / kind / f"{index:03d}.png")
            if sample.mask is not None:
                save_png(sample.mask, building / "ground_truth" / kind / f"{index:03d}_mask.png")
        write_json(
            building / MARKER,
            {"category": category, "counts": full, "image_size": image_size, "seed": seed},
        )
        if target.exists():
            os.replace(target, retired)
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def _replaceable(folder: Path) -> bool:
    """Only an earlier synthetic tree or an empty folder may be replaced: never real data."""
    return folder.is_dir() and ((folder / MARKER).is_file() or not any(folder.iterdir()))
