"""The segmentation head (a small U-Net decoder over layer1..layer3, trained on the synthetic
anomalies' masks) and the image score of its map. Pure torch, no I/O."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The backbone layers the head reads (strides 4, 8, 16).
SEGMENTATION_TAPS = ("layer1", "layer2", "layer3")


def _fuse(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


class SegmentationHead(nn.Module):
    """Where in the image the anomaly is: a small U-Net decoder over the backbone's layer1,
    layer2 and layer3 maps (strides 4, 8, 16), trained on the masks of the synthetic
    anomalies (DRAEM's discriminative network, on the classifier's own backbone). One logit
    per position of the layer1 map, a quarter of the input's side."""

    def __init__(self, channels: tuple[int, int, int] = (64, 128, 256)) -> None:
        super().__init__()
        shallow, middle, deep = channels
        self.fuse_deep = _fuse(deep + middle, middle)
        self.fuse_middle = _fuse(middle + shallow, shallow)
        self.logit = nn.Conv2d(shallow, 1, 1)

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        shallow, middle, deep = taps
        x = F.interpolate(deep, size=middle.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse_deep(torch.cat([x, middle], dim=1))
        x = F.interpolate(x, size=shallow.shape[-2:], mode="bilinear", align_corners=False)
        return self.logit(self.fuse_middle(torch.cat([x, shallow], dim=1)))[:, 0]


def map_image_score(maps: torch.Tensor) -> torch.Tensor:
    """(N,): the maximum of each anomaly map (N, H, W) after a box filter a sixteenth of its
    side wide (DRAEM's image score): one hot pixel does not make an image anomalous, a blob
    does."""
    kernel = max(3, maps.shape[-1] // 16) | 1
    smoothed = F.avg_pool2d(
        maps[:, None], kernel, stride=1, padding=kernel // 2, count_include_pad=False
    )
    return smoothed.flatten(1).amax(dim=1)
