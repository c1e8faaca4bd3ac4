"""Resized images as tensors: loading a manifest split, normalisation, augmentation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from metricad import portable_math
from metricad.data.images import load_mask, load_rgb
from metricad.runtime import memory_format_for

# Below four rows MKL's matrix products and oneDNN's convolutions switch to kernels for skinny
# shapes whose last bits depend on the CPU vendor (docs/reproducibility.md); no batch is smaller.
MIN_ROWS = 4
# torchvision's ImageNet statistics: the backbone expects them, pretrained or not.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image_tensor(manifest: pd.DataFrame) -> torch.Tensor:
    """All images of `manifest` as one uint8 tensor (N, 3, H, W); uint8 keeps 512 px sets small."""
    if manifest.empty:
        return torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
    arrays = np.stack([load_rgb(path) for path in manifest["path"]])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()


def load_mask_array(manifest: pd.DataFrame, size: int) -> np.ndarray:
    """Masks (N, size, size) bool; an image without a mask file gets an all-False mask."""
    masks = np.zeros((len(manifest), size, size), dtype=bool)
    for row, mask_path in enumerate(manifest["mask_path"]):
        if mask_path:
            masks[row] = load_mask(mask_path)
    return masks


def labels_tensor(manifest: pd.DataFrame) -> torch.Tensor:
    return torch.tensor(manifest["label"].to_numpy(dtype=np.int64))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float, scaled to [0, 1] and standardised per channel, in the
    memory layout the network runs in on that device (runtime.memory_format_for)."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    scaled = (images.float() / 255.0 - mean) / std
    return scaled.contiguous(memory_format=memory_format_for(images.device))


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and quarter turns per image: a texture has no up or left.

    The eight choices are drawn on the CPU from `generator`; the images are moved on their own
    device, one indexing pass per choice, so a GPU batch never waits for the host.
    """
    choices = torch.randint(0, 8, (len(images),), generator=generator)
    out = torch.empty_like(images)
    for choice in range(8):
        rows = torch.nonzero(choices == choice).flatten()
        if len(rows) == 0:
            continue
        rows = rows.to(images.device)
        picked = images[rows].flip(-1) if choice & 4 else images[rows]
        out[rows] = torch.rot90(picked, choice & 3, dims=(-2, -1))
    return out


def photometric(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and gamma of each whole image changed by factors in
    [1 - strength, 1 + strength] (gamma: exp of +-strength): a line's lighting drifts, and
    a darker photo of a good part is still good. uint8 in and out; the factors come from
    `generator` on the CPU, the pixels stay on their device."""
    count = len(images)

    def factors(spread: torch.Tensor) -> torch.Tensor:
        return spread.to(images.device).view(count, 1, 1, 1)

    brightness, contrast, gamma = (
        factors(strength * (2 * torch.rand(count, generator=generator) - 1)) for _ in "bcg"
    )
    pixels = images.float() / 255.0
    mean = pixels.mean(dim=(1, 2, 3), keepdim=True)
    pixels = ((pixels - mean) * (1 + contrast) + mean) * (1 + brightness)
    pixels = pixels.clamp(0.0, 1.0) ** portable_math.exp(gamma)
    return (pixels * 255.0).round().clamp(0, 255).to(torch.uint8)


def _reflected(size: int, margin: int) -> torch.Tensor:
    """Indices of 0..size-1 extended by `margin` on each side by reflection (edge not repeated)."""
    index = torch.arange(-margin, size + margin).abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """A random translation per image by up to `max_shift` pixels each way, the border filled
    by reflection: the grain goes on without a seam that could pass for a CutPaste edge.

    Offsets are drawn on the CPU from `generator`; the images stay on their device.
    """
    size_y, size_x = images.shape[-2:]
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    rows = _reflected(size_y, max_shift).to(images.device)
    cols = _reflected(size_x, max_shift).to(images.device)
    padded = images[:, :, rows][:, :, :, cols]
    return _windows(padded, offsets[:, 0].tolist(), offsets[:, 1].tolist(), size_y, size_x)


def crop(images: torch.Tensor, side: int, generator: torch.Generator) -> torch.Tensor:
    """A random `side` x `side` square of each image. Offsets are drawn on the CPU from
    `generator`; the images stay on their device."""
    size_y, size_x = images.shape[-2:]
    tops = torch.randint(0, size_y - side + 1, (len(images),), generator=generator)
    lefts = torch.randint(0, size_x - side + 1, (len(images),), generator=generator)
    return _windows(images, tops.tolist(), lefts.tolist(), side, side)


def _windows(
    images: torch.Tensor, tops: list[int], lefts: list[int], height: int, width: int
) -> torch.Tensor:
    """Of each image, the `height` x `width` window whose corner is its (top, left)."""
    return torch.stack(
        [
            images[row, :, top : top + height, left : left + width]
            for row, (top, left) in enumerate(zip(tops, lefts, strict=True))
        ]
    )


def eval_batches(
    images: torch.Tensor, batch_size: int, progress: str | None = None
) -> Iterator[tuple[torch.Tensor, int]]:
    """Eval-mode batches of `images`, each padded with black images to the same number of rows
    (`batch_size`, at least MIN_ROWS), and the number of real rows in each. The matrix
    kernels choose their code by the batch's shape; with one shape for every batch, an image
    gets the same bits whatever batch it comes in (in eval mode its result depends on that
    image alone). `progress`: a progress bar with this label."""
    rows = max(batch_size, MIN_ROWS)
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=progress, unit="batch", disable=progress is None):
        batch = images[start : start + batch_size]
        count = len(batch)
        if count < rows:
            batch = torch.cat([batch, batch.new_zeros(rows - count, *batch.shape[1:])])
        yield batch, count
