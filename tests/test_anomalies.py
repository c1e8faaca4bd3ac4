"""Synthetic training anomalies: where they change the image, and that a seed fixes them."""

from __future__ import annotations

import typing

import pytest
import torch

from metricad.data.anomalies import ANOMALIES, corrupt_batch, synthesize, synthetic_sample
from metricad.data.anomalies.cutpaste import cutpaste
from metricad.data.anomalies.mixed import MIXED
from metricad.data.anomalies.perlin import FOREGROUND_DISTANCE, foreground, perlin, perlin_noise
from metricad.data.anomalies.scar import scar
from metricad.params import SyntheticKind


def _texture(size: int = 64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, size, size), generator=generator, dtype=torch.uint8)


@pytest.mark.parametrize("seed", range(20))
def test_cutpaste_changes_only_the_pasted_rectangle_inside_the_image(seed):
    image = _texture(seed=seed)
    out, mask = cutpaste(image, torch.Generator().manual_seed(seed))
    rows, cols = torch.nonzero(mask, as_tuple=True)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    # The mask is one filled rectangle, and it lies inside the image.
    assert mask[top : bottom + 1, left : right + 1].all()
    assert mask.sum() == (bottom - top + 1) * (right - left + 1)
    assert 0 <= top <= bottom < image.shape[1] and 0 <= left <= right < image.shape[2]
    # Area within CutPaste's 2-15 % (rounding of the sides aside).
    assert 0.01 <= mask.float().mean() <= 0.17
    changed = (out != image).any(dim=0)
    assert not changed[~mask].any(), "a pixel outside the pasted rectangle changed"
    assert changed[mask].float().mean() > 0.5, "the pasted rectangle is not another piece"


@pytest.mark.parametrize("kind", ANOMALIES.names())
def test_same_seed_same_anomaly_other_seed_other_anomaly(kind):
    image = _texture()
    first, first_mask = synthesize(image, kind, torch.Generator().manual_seed(3), 0.3)
    again, again_mask = synthesize(image, kind, torch.Generator().manual_seed(3), 0.3)
    other, _ = synthesize(image, kind, torch.Generator().manual_seed(4), 0.3)
    assert torch.equal(first, again) and torch.equal(first_mask, again_mask)
    assert not torch.equal(first, other)
    assert first.dtype == torch.uint8 and first.shape == image.shape
    assert not (first != image).any(dim=0)[~first_mask].any()


def test_scar_is_thin_and_long():
    image = _texture(size=256)
    _, mask = scar(image, torch.Generator().manual_seed(0))
    rows, cols = torch.nonzero(mask, as_tuple=True)
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    assert 0 < mask.sum() <= 16 * 25 * 1.2
    assert extent >= 8


def test_corrupt_batch_turns_a_share_of_good_images_only():
    images = torch.stack([_texture(seed=n) for n in range(8)])
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    out, out_labels, masks = corrupt_batch(images, labels, "cutpaste", 0.5, 0.1, torch.Generator())
    turned = (out_labels == 1) & (labels == 0)
    assert turned.sum() == 3  # round(0.5 * 6 good images)
    changed = (out != images).any(dim=1)
    assert torch.equal(changed.flatten(1).any(dim=1), turned)
    assert torch.equal(masks.flatten(1).any(dim=1), turned)
    assert not changed[~masks].any(), "a pixel outside its mask changed"
    assert torch.equal(images, torch.stack([_texture(seed=n) for n in range(8)]))  # untouched


def test_no_synthetic_anomalies_draws_nothing():
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    images, labels = torch.stack([_texture()] * 2), torch.zeros(2, dtype=torch.long)
    out, out_labels, masks = corrupt_batch(images, labels, "none", 0.5, 0.3, generator)
    assert out is images and out_labels is labels and not masks.any()
    assert torch.equal(generator.get_state(), before)


def test_synthetic_sample_is_fixed_and_cycles_sources():
    images = torch.stack([_texture(seed=n) for n in range(3)])
    first = synthetic_sample(images, 7, "mixed", 0.3, seed=1)
    again = synthetic_sample(images, 7, "mixed", 0.3, seed=1)
    assert torch.equal(first[0], again[0]) and first[2:] == again[2:]
    anomalies, masks, sources, kinds = first
    assert anomalies.shape == (7, 3, 64, 64) and masks.shape == (7, 64, 64)
    assert sorted(sources[:3]) == [0, 1, 2]  # every image once before any twice
    assert set(kinds) <= set(MIXED.parts)
    empty = synthetic_sample(images, 7, "none", 0.3, seed=1)
    assert empty[0].shape == (0, 3, 64, 64) and empty[2] == []


def test_params_offer_exactly_the_registered_kinds_and_none():
    ANOMALIES.check_names(SyntheticKind, without=("none",))
    assert "none" in typing.get_args(SyntheticKind) and "none" not in ANOMALIES


def _object_on_background(size: int = 64, seed: int = 0) -> torch.Tensor:
    """A dark textured disc on a light, even background: a photo of an object."""
    image = torch.full((3, size, size), 220, dtype=torch.uint8)
    axis = torch.arange(size) - size / 2 + 0.5
    disc = axis[:, None] ** 2 + axis[None, :] ** 2 < (size / 4) ** 2
    image[:, disc] = _texture(size, seed)[:, disc] // 3
    return image


def test_the_foreground_is_the_object_or_the_whole_texture():
    image = _object_on_background()
    object_mask = foreground(image)
    axis = torch.arange(64) - 31.5
    radius = (axis[:, None] ** 2 + axis[None, :] ** 2).sqrt()
    assert object_mask[radius < 16].all() and not object_mask[radius > 22].any()
    assert foreground(_texture()).all()


@pytest.mark.parametrize("seed", range(4))
def test_the_foreground_is_widened_by_a_plain_9_by_9_maximum(seed):
    image = _object_on_background(seed=seed)
    pixels = image.float()
    sides = (pixels[:, :4], pixels[:, -4:], pixels[:, :, :4], pixels[:, :, -4:])
    border = torch.cat([side.flatten(1) for side in sides], dim=1)
    background = border.median(dim=1).values[:, None, None]
    differs = (pixels - background).abs().amax(dim=0) > FOREGROUND_DISTANCE
    widened = torch.nn.functional.max_pool2d(differs[None, None].float(), 9, 1, 4)[0, 0] > 0
    assert torch.equal(foreground(image), widened)


@pytest.mark.parametrize(("size", "cells"), [(96, 2), (128, 4), (192, 8), (50, 8)])
def test_perlin_noise_is_the_lattice_gradients_interpolated(size, cells):
    # The noise written the plain way (each pixel's corner gradients by a broadcast gather):
    # perlin_noise must give the same bits, or every cell trained on Perlin anomalies moves.
    noise = perlin_noise(size, cells, torch.Generator().manual_seed(size + cells))
    generator = torch.Generator().manual_seed(size + cells)
    angles = 2 * torch.pi * torch.rand(cells + 1, cells + 1, generator=generator)
    gradients = torch.stack((angles.cos(), angles.sin()), dim=-1)
    position = (torch.arange(size, dtype=torch.float32) + 0.5) * cells / size
    cell = position.floor().long().clamp(max=cells - 1)
    fy, fx = (position - cell)[:, None], (position - cell)[None, :]
    corners = {}
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        gradient = gradients[cell[:, None] + dy, cell[None, :] + dx]
        corners[dy, dx] = gradient[..., 0] * (fy - dy) + gradient[..., 1] * (fx - dx)
    u, v = (t * t * t * (t * (t * 6 - 15) + 10) for t in (fy, fx))
    top = corners[0, 0] * (1 - v) + corners[0, 1] * v
    bottom = corners[1, 0] * (1 - v) + corners[1, 1] * v
    assert torch.equal(noise, (top * (1 - u) + bottom * u) * 2**0.5)


@pytest.mark.parametrize("seed", range(10))
def test_perlin_anomalies_stay_on_the_object_and_take_foreign_texture(seed):
    image = _object_on_background(seed=seed)
    pool = torch.stack([_object_on_background(seed=100 + n) for n in range(3)])
    out, mask = perlin(image, torch.Generator().manual_seed(seed), 0.3, pool)
    assert mask.sum() >= 4 and not mask[~foreground(image)].any()
    changed = (out != image).any(dim=0)
    assert not changed[~mask].any() and changed[mask].any()
