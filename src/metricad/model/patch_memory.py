"""The patch memory (model.patch_memory): PatchCore's and PaDiM's idea on the network's own
backbone. The good training images' feature vectors at each position of layer1 and layer2
(each averaged over its 3x3 neighbourhood, layer2 upsampled to layer1's grid: 192 channels at
a quarter of the input's side) are kept; an image's distance at a position is the distance to
the nearest kept vector at that position or one of its 8 neighbours, so it suits photos framed
to one pose (resize.framing), in units of how much the good images vary at that position (the
`unit`). With several views of each image (model.patch_views: model/views/), each view has its own
bank of that view of the good images, and an image's distances are the mean of its views'
maps, each turned back into the image's frame (test-time augmentation: one view's noise
averages out, a defect seen in every view does not). Its image score (`patch`) is the
largest distance over the positions, its heat map the distances upsampled. Pure torch, no
I/O: the bank is a buffer the checkpoint carries, its size set by the data and the views
(`fit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from metricad.model.views import VIEWS
from metricad.portable_math import sqrt

# The backbone layers the vectors come from (strides 4 and 8): chosen by the screens of
# docs/results.md ("Screw": layer1+layer2 above layer2+layer3).
PATCH_TAPS = ("layer1", "layer2")
PATCH_CHANNELS = 64 + 128
# How far (in positions of the layer1 grid) the nearest vector may lie: the pose's slack.
REACH = 1
# Training images met at once by the leave-one-out distances of `fit` (memory, not numbers).
LEAVE_ONE_OUT_BATCH = 32


class PatchMemory(nn.Module):
    """The bank of the good training images' patch vectors position by position, one bank
    per view of the images (model/views/: each view of a test image meets the same view of
    the good images), (V, h*w, C, B) for V views of B images (float16: half the file; the
    distances are float32), the distance `unit` of each view's positions (V, h*w), and
    `scale`, the heat map's unit."""

    def __init__(self, view_set: str = "single") -> None:
        super().__init__()
        self.view_set = view_set  # the views' names (model/views/), from the checkpoint's arch
        self.register_buffer("bank", torch.zeros(1, 1, PATCH_CHANNELS, 0, dtype=torch.float16))
        self.register_buffer("unit", torch.ones(1, 1, dtype=torch.float32))
        self.register_buffer("scale", torch.ones((), dtype=torch.float32))

    @staticmethod
    def features(taps: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N, C, h, w): the PATCH_TAPS maps, each averaged over 3x3, on layer1's grid."""
        maps = [F.avg_pool2d(taps[name], 3, 1, 1, count_include_pad=False) for name in PATCH_TAPS]
        grid = maps[0].shape[-2:]
        return torch.cat(
            [F.interpolate(m, size=grid, mode="bilinear", align_corners=False) for m in maps], 1
        )

    def hold(self, shape: torch.Size) -> None:
        """An empty bank of `shape` (before a saved one is loaded into it)."""
        self.bank = torch.zeros(shape, dtype=torch.float16)
        self.unit = torch.ones(shape[:2], dtype=torch.float32)

    def fit(self, good: Sequence[torch.Tensor]) -> None:
        """Keep the patch vectors (N, C, h, w) of the good training images, one tensor per
        view of the memory's view set, in its order. Each one's leave-one-out distances (to
        the others, view by view) set each position's unit:
        the geometric mean of the position's spread (its largest leave-one-out distance) and
        the median spread, so positions where good images differ (edges, a part's ends, its
        pose's slack) count less, while one where they never differ (a flat ground) does not
        magnify noise. The half power was chosen on screw's networks (docs/results.md): it
        ranked the defects better on each of six, the full power did not. The scale is the
        largest leave-one-out image score (how far the most unusual good image lies from the
        others, its views' maps averaged as `view_mean` averages a test image's); all 1 with a
        single image."""
        self.bank = torch.stack(
            [view.to(torch.float16).flatten(2).permute(2, 1, 0) for view in good]
        ).contiguous()
        device = good[0].device
        self.unit = torch.ones(self.bank.shape[:2], dtype=torch.float32, device=device)
        self.scale = torch.ones((), dtype=torch.float32, device=device)
        if len(good[0]) < 2:
            return
        back, units, left_out = VIEWS[self.view_set].back, [], []
        for view, vectors in enumerate(good):
            distances = self.left_out_distances(vectors, view)  # in the unit 1
            spread = distances.amax(0).flatten().clamp_min(1e-6)
            units.append(sqrt(spread * spread.median()))
            left_out.append(back(distances / units[-1].reshape(distances.shape[1:]), view))
        self.unit = torch.stack(units)
        self.scale = self.view_mean(left_out).flatten(1).amax().clamp_min(1e-6)

    @staticmethod
    def view_mean(maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """The mean of the views' distance maps (N, h, w), each in the image's frame."""
        return torch.stack(list(maps)).mean(dim=0)

    def left_out_distances(self, good: torch.Tensor, view: int = 0) -> torch.Tensor:
        """(N, h, w): each of a view's bank images (its patch vectors `good`, (N, C, h, w), in
        the bank's order) against the others, in the current unit."""
        return torch.cat(
            [
                self.distances(
                    good[start : start + LEAVE_ONE_OUT_BATCH].float(),
                    view,
                    exclude=torch.arange(start, min(start + LEAVE_ONE_OUT_BATCH, len(good))),
                )
                for start in range(0, len(good), LEAVE_ONE_OUT_BATCH)
            ]
        )

    def distances(
        self, vectors: torch.Tensor, view: int = 0, exclude: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, h, w) float32: at each position of the patch vectors (N, C, h, w) of view number
        `view`, the distance to the nearest vector of that view's bank within REACH, in the
        position's unit; NaN with an empty bank. `exclude`: per query, a bank image it must
        not meet (leave-one-out, `fit`)."""
        count, channels, height, width = vectors.shape
        if self.bank.shape[-1] == 0:
            return torch.full((count, height, width), float("nan"), device=vectors.device)
        # Each shift below meets the bank whole and moves the queries instead (the smaller
        # copy), so every product is one batched matmul.
        bank = self.bank[view].float()
        bank_norms = bank.square().sum(1, keepdim=True)  # h*w, 1, B
        far = torch.finfo(torch.float32).max
        # Queries on a grid padded by REACH, (h + 2R, w + 2R, N, C): a pad is never nearest.
        padded = F.pad(vectors.float(), (REACH,) * 4).permute(2, 3, 0, 1).contiguous()
        padded_norms = padded.square().sum(-1)
        outside = F.pad(
            torch.zeros(height, width, device=vectors.device), (REACH,) * 4, value=1.0
        ).bool()
        best = torch.full((height, width, count), far, device=vectors.device)
        for dy in range(2 * REACH + 1):
            for dx in range(2 * REACH + 1):
                # Bank position (y, x) meets the query at (y - dy + R, x - dx + R).
                query = padded[dy : dy + height, dx : dx + width].reshape(height * width, count, -1)
                # |q - b|^2 = |q|^2 + (|b|^2 - 2 q.b): the first term is the same for every
                # b, so it is added after the minimum (one pass over the products, not three).
                partial = torch.baddbmm(bank_norms, query, bank, alpha=-2.0)  # h*w, N, B
                if exclude is not None:
                    partial[:, torch.arange(count, device=vectors.device), exclude] = far
                nearest = partial.amin(-1).reshape(height, width, count)
                nearest = nearest + padded_norms[dy : dy + height, dx : dx + width]
                nearest = nearest.masked_fill(outside[dy : dy + height, dx : dx + width, None], far)
                # Back to the query's own position; what wraps round is a pad's, hence far.
                shifted = torch.roll(nearest, (dy - REACH, dx - REACH), dims=(0, 1))
                best = torch.minimum(best, shifted)
        unit = self.unit[view].reshape(height, width, 1)
        return (sqrt(best.clamp_min(0)) / unit).permute(2, 0, 1)

    def heat_map(self, distances: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(N, H, W) in [0, 1]: the distances (N, h, w) upsampled to the input's size, in
        units of twice the scale (0.5: as far as the most unusual good training image)."""
        upsampled = F.interpolate(
            distances[:, None], size=size, mode="bilinear", align_corners=False
        )[:, 0]
        return (upsampled / (2 * self.scale)).clamp(0.0, 1.0)
