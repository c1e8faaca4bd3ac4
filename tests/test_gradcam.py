"""Grad-CAM: it points at what the model reacts to, and it is the same every time."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from metricad.analysis.gradcam import class_activation_maps, heatmaps_for_images
from metricad.model.torch_model import build_model


class RedDetector(nn.Module):
    """A toy model shaped like AnomalyNet whose anomalous score is 'how much red there is'."""

    def __init__(self) -> None:
        super().__init__()
        red = nn.Conv2d(3, 2, kernel_size=1, bias=False)
        with torch.no_grad():
            red.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, 1.0]]).view(2, 3, 1, 1))
        self.encoder = nn.Module()
        self.encoder.backbone = nn.Sequential(
            OrderedDict(layer1=red, relu=nn.ReLU(), layer4=nn.AvgPool2d(4))
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.backbone(images).mean(dim=(2, 3))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([features[:, 1], features[:, 0]], dim=1)  # (good, anomalous)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))


def _grey_with_red_square(row: int, col: int) -> torch.Tensor:
    image = torch.zeros(1, 3, 64, 64)
    image[0, :, row : row + 12, col : col + 12] = torch.tensor([3.0, -1.0, -1.0]).view(3, 1, 1)
    return image


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize(("row", "col"), [(4, 4), (40, 10), (24, 44)])
def test_map_peaks_where_the_toy_model_reacts(method, row, col):
    model = RedDetector().eval()
    maps, peaks, classes, *_ = class_activation_maps(
        model, _grey_with_red_square(row, col), "anomalous", "layer4", method
    )
    assert maps.shape == (1, 64, 64) and classes.tolist() == [1]
    assert peaks[0] > 0 and maps.max() == pytest.approx(1.0)
    hottest = divmod(int(maps[0].argmax()), 64)
    assert row - 4 <= hottest[0] < row + 16 and col - 4 <= hottest[1] < col + 16
    inside = maps[0, row : row + 12, col : col + 12].mean()
    assert inside > 3 * maps[0].mean()


def test_good_target_explains_the_other_class():
    model = RedDetector().eval()
    image = _grey_with_red_square(40, 40)
    anomalous, _, _, *_ = class_activation_maps(model, image, "anomalous", "layer4")
    good, good_peaks, classes, *_ = class_activation_maps(model, image, "good", "layer4")
    assert classes.tolist() == [0]
    # For 'good' the red square lowers the score: that region gets no heat ("inverted").
    assert good[0, 40:52, 40:52].mean() < anomalous[0, 40:52, 40:52].mean()


def test_predicted_target_follows_the_logits():
    model = RedDetector().eval()
    _, _, classes, *_ = class_activation_maps(model, _grey_with_red_square(8, 8), "predicted")
    assert classes.tolist() == [1]


def test_refuses_training_mode():
    model = build_model(input_size=32).train()
    with pytest.raises(ValueError, match="eval mode"):
        class_activation_maps(model, torch.randn(2, 3, 32, 32))


def test_training_mode_would_change_the_map_and_eval_mode_does_not():
    torch.manual_seed(0)
    model = build_model(input_size=64, dropout=0.5)
    images = (torch.rand(2, 3, 64, 64) * 255).to(torch.uint8)
    model.eval()
    first = heatmaps_for_images(
        model, images, torch.device("cpu"), 2, layer="layer3", progress=False
    )
    second = heatmaps_for_images(
        model, images, torch.device("cpu"), 2, layer="layer3", progress=False
    )
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    # What the article did: the same call in train mode (Dropout2d active) gives another map.
    model.train()
    model.training = False  # slip past the guard, keep the submodules in train mode
    noisy = heatmaps_for_images(
        model, images, torch.device("cpu"), 2, layer="layer3", progress=False
    )
    assert not torch.equal(noisy[0], first[0])


def test_all_zero_map_keeps_zero_peak():
    model = RedDetector().eval()
    image = torch.zeros(1, 3, 64, 64)
    image[:, 1:] = 1.0  # no red anywhere: the anomalous feature is zero everywhere
    maps, peaks, _, *_ = class_activation_maps(model, image, "anomalous", "layer4")
    assert float(peaks[0]) == 0.0 and float(maps.abs().max()) == 0.0
