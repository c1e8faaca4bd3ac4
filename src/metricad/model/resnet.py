"""ResNet-18's feature layers as torchvision builds them (`torchvision.models.resnet18(
weights=None)`): the same modules, parameter names, initialisation and random draws, so a
seed gives torchvision's weights bit for bit and its ImageNet state_dict loads as it is.

Written out rather than imported: `import torchvision` costs about 1.7 s (it loads
torch._dynamo for its detection ops), paid by every stage that builds the network; only the
ImageNet download (checkpoint.py) still imports it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

# The feature layers, in order (the names of torchvision's, and of its ImageNet state_dict).
BACKBONE_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
# (channels, stride) of layer1..layer4, two basic blocks each.
STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))
IMAGENET_CLASSES = 1000


def _conv(inputs: int, outputs: int, kernel: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel, stride, padding=kernel // 2, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (a strided 1x1 convolution where the shape changes)."""

    def __init__(self, inputs: int, outputs: int, stride: int, shortcut: nn.Module | None) -> None:
        super().__init__()
        # torchvision's attribute names (state_dict keys) and order (the order of init draws).
        self.conv1 = _conv(inputs, outputs, 3, stride)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(outputs, outputs, 3, 1)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


def _layer(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    shortcut = None
    if stride != 1 or inputs != outputs:
        # Built before the block, as torchvision does: the draws come in its order.
        shortcut = nn.Sequential(_conv(inputs, outputs, 1, stride), nn.BatchNorm2d(outputs))
    return nn.Sequential(
        BasicBlock(inputs, outputs, stride, shortcut), BasicBlock(outputs, outputs, 1, None)
    )


def resnet18_layers() -> OrderedDict[str, nn.Module]:
    """conv1, bn1, relu, maxpool and layer1..layer4 of a randomly initialised ResNet-18."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=_conv(3, 64, 7, 2),
        bn1=nn.BatchNorm2d(64),
        relu=nn.ReLU(inplace=True),
        maxpool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    inputs = 64
    for number, (outputs, stride) in enumerate(STAGES, start=1):
        layers[f"layer{number}"] = _layer(inputs, outputs, stride)
        inputs = outputs
    # torchvision's ImageNet classifier draws its initial weights here; drawn and dropped, so
    # that what follows (the re-initialisation, the rest of the network) sees the same state.
    nn.Linear(inputs, IMAGENET_CLASSES)
    for module in nn.Sequential(layers).modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)
    return layers
