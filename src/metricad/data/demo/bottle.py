"""Bottle: a glass bottle seen from above (an object, not a texture), with MVTec's three
bottle defects on its lip and shoulder."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from metricad.data.demo.primitives import (
    Category,
    FloatImage,
    blob_weight,
    contrasting,
    pixel_grid,
    smooth_noise,
    smoothstep,
)

# The bottle's rings, as fractions of its outer radius: the dark mouth inside _MOUTH, the bright
# lip from _MOUTH to _LIP, the glass shoulder out to 1. Fixed, so that the defects find the lip.
_MOUTH, _LIP = 0.34, 0.46
# Grey level between the background (about 0.05) and the darkest glass (about 0.2).
_BOTTLE_THRESHOLD = 0.12


def _bottle(rng: np.random.Generator, size: int) -> FloatImage:
    """A glass bottle seen from straight above on a dark background: a dark mouth, a bright lip,
    a grey-green shoulder with a bright outer edge, lit from the top left. Good images differ
    only a little: position, scale, light direction and brightness."""
    y, x = pixel_grid(size)
    cy, cx = size / 2 + rng.uniform(-0.02, 0.02, 2) * size
    radius = rng.uniform(0.38, 0.41) * size
    t = np.hypot(y - cy, x - cx) / radius
    # +1 on the side facing the light (top left, give or take a little), -1 away from it.
    light = -0.75 * np.pi + rng.uniform(-0.3, 0.3)
    facing = np.cos(np.arctan2(y - cy, x - cx) - light)
    brightness = rng.uniform(0.93, 1.07)
    # Slow waviness of the glass and fine sensor noise, so no two good images are equal.
    wobble = smooth_noise(rng, size, 5)
    noise = rng.standard_normal((size, size)).astype(np.float32)

    # The inside of the neck: dark, with the bottle's bottom a faint ring far below.
    mouth = 0.07 + 0.1 * np.exp(-(((t - 0.17) / 0.05) ** 2))
    # The shoulder brightens towards the lip and on its lit side; the edge catches the light.
    shoulder = 0.27 + 0.12 * smoothstep(0.9, 0.5, t) + 0.05 * facing + 0.012 * wobble
    edge = 0.3 * np.exp(-(((t - 0.965) / 0.02) ** 2)) * (0.7 + 0.3 * facing)
    # The lip: a bright ring, brightest towards the light, darker at its inner bevel.
    lip_weight = smoothstep(_MOUTH - 0.02, _MOUTH + 0.02, t) * smoothstep(_LIP + 0.02, _LIP, t)
    lip = 0.66 + 0.16 * facing - 0.2 * np.exp(-(((t - _MOUTH - 0.02) / 0.025) ** 2))
    glass = np.where(t < _MOUTH, mouth, shoulder + edge)
    glass = glass + lip_weight * (lip - glass)
    # About a pixel of soft outline, as a lens gives.
    inside = smoothstep(1.0 + 0.6 / radius, 1.0 - 0.6 / radius, t)
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
    blob = blob_weight(rng, size, radius, 0.5 * radius, centre)
    # Jagged: the outline follows a noisy level inside the blob's wide soft edge; the noise
    # fades out at both ends of the edge, so the notch stays exactly 0 outside the blob.
    tear = 0.5 * smooth_noise(rng, size, 40) * 4 * blob * (1 - blob)
    notch = smoothstep(0.4, 0.6, blob + tear)
    # Around the notch, the fracture face: a thin edge catching the light.
    fracture = np.clip(smoothstep(0.1, 0.4, blob + tear) - notch, 0, 1)[..., None]
    # Inside, the dark neck shows between a few faint shards.
    shards = 0.07 + 0.12 * np.clip(smooth_noise(rng, size, 24), 0, None)
    image = image + 0.7 * fracture * (0.9 - image)
    return image + notch[..., None] * (shards[..., None] - image)


def _bottle_broken_large(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A large piece broken out of the lip, reaching into the neck and onto the shoulder."""
    # Centred towards the lip's inner edge: the dark neck is little changed, so the visible
    # notch would otherwise sit mostly on the shoulder.
    return _broken(image, rng, rng.uniform(0.045, 0.065) * scale, _MOUTH, _LIP - 0.04)


def _bottle_broken_small(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A small chip out of the lip."""
    return _broken(image, rng, rng.uniform(0.025, 0.035) * scale, _MOUTH + 0.05, _LIP - 0.03)


def _bottle_contamination(image: FloatImage, rng: np.random.Generator, scale: float) -> FloatImage:
    """A foreign particle on the glass shoulder: dark dirt, rust or a whitish flake, uneven in
    tone, with a darker rim."""
    size = image.shape[0]
    reach = rng.uniform(0.025, 0.042) * size * scale
    # Far enough inside the outer edge that the whole particle (up to 1.4 reaches) is on glass.
    geometry = _bottle_geometry(image)
    cy, cx = _on_bottle(rng, geometry, _LIP + 0.1, 1 - 1.5 * reach / geometry[2])
    weight = blob_weight(rng, size, reach, 0.3 * reach, (cy, cx))
    colours = np.array(
        [
            [0.05, 0.04, 0.03],  # dark dirt
            [0.42, 0.20, 0.08],  # rust
            [0.85, 0.82, 0.74],  # whitish flake
        ],
        np.float32,
    )
    # Standing out from the glass where it lies (a particle may be only a pixel or two).
    colour = contrasting(rng, image[round(cy), round(cx)], colours)
    grain = 1 + 0.15 * smooth_noise(rng, size, 40)[..., None]
    rim = 1 - 0.5 * (4 * weight * (1 - weight))[..., None]
    weight = weight[..., None]
    return image + weight * (colour * grain * rim - image)


CATEGORY = Category(
    _bottle,
    {
        "broken_large": _bottle_broken_large,
        "broken_small": _bottle_broken_small,
        "contamination": _bottle_contamination,
    },
)
