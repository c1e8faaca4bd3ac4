"""Resized images as tensors: loading a manifest split, normalisation, augmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from metricad.images import load_mask, load_rgb

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
    """uint8 (N, 3, H, W) -> float, scaled to [0, 1] and standardised per channel."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and quarter turns per image: a texture has no up or left."""
    choices = torch.randint(0, 8, (len(images),), generator=generator).tolist()
    out = []
    for image, choice in zip(images, choices, strict=True):
        if choice & 4:
            image = image.flip(-1)
        out.append(torch.rot90(image, choice & 3, dims=(-2, -1)))
    return torch.stack(out)
