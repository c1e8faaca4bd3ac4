"""What every synthetic anomaly kind shares: the registry, the maker's signature, the random
draws and the colour-jittered paste that CutPaste, scar and noise blends are made of."""

from __future__ import annotations

from collections.abc import Callable

import torch

from metricad.registry import Registry

# Good images a foreign texture may come from (perlin); the other kinds take none.
Pool = torch.Tensor | None
# (good uint8 image (3, H, W), generator, colour jitter, pool) -> (anomaly, mask (H, W) bool)
Maker = Callable[[torch.Tensor, torch.Generator, float, Pool], tuple[torch.Tensor, torch.Tensor]]

ANOMALIES: Registry[Maker] = Registry("synthetic anomaly kind", "train.synthetic_anomalies")

# Colour jitter of the moved piece: CutPaste's published 0.1 for brightness, contrast and
# saturation. The pipeline's default (train.synthetic_jitter) is stronger (docs/results.md).
JITTER = 0.1


class Mixture:
    """A composite kind: each image becomes one of `parts` (registered kinds), drawn from the
    generator before that part's own draws."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def draw(self, generator: torch.Generator) -> str:
        return self.parts[randint(generator, 0, len(self.parts) - 1)]

    def __call__(
        self, image: torch.Tensor, generator: torch.Generator, jitter: float, pool: Pool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return ANOMALIES[self.draw(generator)](image, generator, jitter, pool)


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high] inclusive."""
    return int(torch.randint(low, high + 1, (), generator=generator).item())


def jittered(pixels: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s] (float)."""
    low, high = 1 - strength, 1 + strength
    brightness, contrast, saturation = (uniform(generator, low, high) for _ in "bcs")
    pixels = pixels * brightness
    mean = pixels.mean()
    pixels = mean + (pixels - mean) * contrast
    grey = pixels.mean(dim=0, keepdim=True)
    return grey + (pixels - grey) * saturation


def blend(
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
    source_top = randint(generator, 0, size_y - height)
    source_left = randint(generator, 0, size_x - width)
    shift = (top - source_top, left - source_left)
    source = jittered(torch.roll(image.float(), shifts=shift, dims=(-2, -1)), generator, jitter)
    # The mask is drawn on the CPU (its bounding box above needs no device sync); the pixels
    # are blended where the image lives.
    mask = mask.to(image.device)
    weight = mask.float() * opacity
    mixed = image.float() * (1 - weight) + source * weight
    return torch.where(mask, mixed.round().clamp(0, 255).to(torch.uint8), image)
