"""metricad's Grad-CAM, Grad-CAM++ and HiResCAM against pytorch-grad-cam (PyPI `grad-cam`).

Both libraries are run on the same random-init AnomalyNet (eval mode), the same backbone
layer (`model.encoder.backbone.<layer>`) and the same target class, and explain the same
score: the raw class logit `model(images)[:, c]` (AdaCos: scale * cos in eval mode, no margin,
no softmax), which is pytorch-grad-cam's `ClassifierOutputTarget(c)`; metricad's "predicted"
target is pytorch-grad-cam's `targets=None` (argmax of the logits).

Where the two agree:
- Grad-CAM (channel weight = spatial mean of the gradient) and HiResCAM (gradient x
  activation, summed over channels): the same maths, so the same maps, unnormalised too.
- ReLU on the layer-sized map, then bilinear upsampling to the input size: cv2.resize and
  F.interpolate(align_corners=False) both put pixel centres at half-pixel positions.

Where they differ:
- Normalisation. pytorch-grad-cam min-max normalises each map (subtracts its minimum, divides
  by max - min + 1e-7), once at the layer's size and again after upsampling (and after
  averaging several layers). metricad divides the upsampled map by its maximum only and returns
  that maximum (the "peak") beside it. A map that is positive everywhere (Grad-CAM++ here has
  a floor of 0.25-0.87) keeps its floor in metricad and is stretched to [0, 1] by
  pytorch-grad-cam; an all-zero map is zero in both (pytorch-grad-cam: 0 / 1e-7), but only
  metricad's peak (0) still says "no response"; a constant positive map is 1 in metricad and 0
  there. The comparison therefore min-max normalises metricad's map, and compares the raw,
  unnormalised maps (metricad's map x peak) as well.
- Grad-CAM++. Both use the paper's closed form for an exponential score (Chattopadhyay et al.
  2018, eq. 19): alpha = g^2 / (2 g^2 + sum(A) g^3), weight = sum(alpha relu(g)), alpha = 0
  where g = 0. pytorch-grad-cam adds an absolute 1e-6 to the denominator. Where g^2 is not
  far above 1e-6 its alpha is smaller, down to g^2 / 1e-6: on the committed trained model at
  layer2 (median |g| about 1e-4) the normalised maps differ by up to 0.12 (correlation down to
  0.95, another hottest pixel in 2 of 12 test images); on this random model (|g| up to about
  0.1) by 6e-4 to 1e-3. The test removes the epsilon exactly: pytorch-grad-cam's own
  get_cam_image, fed the gradients times K and the activations divided by K, gives its map
  with 1e-6 / K^2 in place of 1e-6: with K g and A / K, alpha becomes
  g^2 / (2 g^2 + sum(A) g^3 + 1e-6 / K^2), and the weight sum(alpha K relu(g)) multiplies A / K.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from metricad.analysis.gradcam import CLASS_INDEX, METHODS, class_activation_maps
from metricad.data.batches import normalize
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.params import params_from_dict

SIZE = 64  # input side: layer2 8x8, layer3 4x4, layer4 2x2
REFERENCE = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM}
# (layer, target). Grad-CAM's averaged gradients cancel behind the flatten + Linear neck
# (params.yaml, gradcam.method): on this model and these images its layer3 "anomalous" maps are
# zero for two images of four, its layer4 "anomalous" maps for all four, and its layer4
# "predicted" maps for the two images predicted "anomalous" only.
CASES = [
    ("layer2", "anomalous"),
    ("layer3", "anomalous"),
    ("layer4", "anomalous"),
    ("layer2", "good"),
    ("layer4", "predicted"),
]
ALL_ZERO = ("gradcam", "layer4", "anomalous")
# pytorch-grad-cam's Grad-CAM++ epsilon becomes 1e-6 / K^2 (module docstring).
EPSILON_SCALE = 1e4


@pytest.fixture(scope="module")
def model_and_images() -> tuple[torch.nn.Module, torch.Tensor]:
    """A seeded random-init AnomalyNet in eval mode and four smooth random images, two of
    which it predicts 'good' and two 'anomalous' (so the "predicted" target takes both)."""
    torch.manual_seed(0)
    params = params_from_dict({"resize": {"size": SIZE}, "model": {"embedding_dim": 32}})
    model = model_from_arch(arch_from_params(params)).eval()
    generator = torch.Generator().manual_seed(2)
    coarse = torch.randint(0, 256, (4, 3, 4, 4), generator=generator).float()
    images = F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear").to(torch.uint8)
    images = normalize(images)
    with torch.no_grad():
        assert set(model(images).argmax(dim=1).tolist()) == {0, 1}
    return model, images


def _min_max(maps: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's per-image normalisation; a constant map (all zero) becomes 0."""
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0)


def _upsampled(raw: np.ndarray) -> np.ndarray:
    """ReLU, then cv2's bilinear resize to the input size, as pytorch-grad-cam does it."""
    relu = np.maximum(raw, 0).astype(np.float32)
    return np.stack([cv2.resize(layer_map, (SIZE, SIZE)) for layer_map in relu])


def _reference(
    model: torch.nn.Module, images: torch.Tensor, method: str, layer: str, target: str
) -> tuple[np.ndarray, np.ndarray]:
    """pytorch-grad-cam's normalised maps (its public call) and its raw maps (ReLU and
    upsampling, no normalisation), from the activations and gradients its own hooks caught.
    For Grad-CAM++ the raw maps are computed with its epsilon scaled away."""
    module = getattr(model.encoder.backbone, layer)
    targets = (
        None
        if target == "predicted"
        else [ClassifierOutputTarget(CLASS_INDEX[target])] * len(images)
    )
    with REFERENCE[method](model, [module]) as cam:
        maps = cam(images, targets)
        activations = cam.activations_and_grads.activations[0].numpy().astype(np.float64)
        gradients = cam.activations_and_grads.gradients[0].numpy().astype(np.float64)
        if method == "gradcam++":
            activations, gradients = activations / EPSILON_SCALE, gradients * EPSILON_SCALE
        raw = cam.get_cam_image(images, module, targets, activations, gradients, eigen_smooth=False)
    return maps, _upsampled(raw)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("layer", "target"), CASES)
def test_raw_maps_match_pytorch_grad_cam(model_and_images, method, layer, target):
    """Unnormalised maps (after ReLU and upsampling): the same to 1e-5 of the largest peak,
    for all three methods (Grad-CAM++ without pytorch-grad-cam's epsilon)."""
    model, images = model_and_images
    maps, peaks, classes, *_ = class_activation_maps(model, images, target, layer, method)
    _, raw = _reference(model, images, method, layer, target)
    if (method, layer, target) == ALL_ZERO:
        assert float(peaks.max()) == 0.0
    else:
        assert float(peaks.max()) > 0.0  # something to compare
    ours = (maps * peaks[:, None, None]).numpy()
    np.testing.assert_allclose(ours, raw, rtol=0, atol=1e-5 * float(peaks.max()))
    np.testing.assert_allclose(peaks.numpy(), raw.max(axis=(1, 2)), rtol=1e-5, atol=0)
    if target == "predicted":
        with torch.no_grad():
            assert torch.equal(classes, model(images).argmax(dim=1))


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
@pytest.mark.parametrize(("layer", "target"), CASES)
def test_normalised_maps_match_pytorch_grad_cam(model_and_images, method, layer, target):
    """Grad-CAM and HiResCAM, each library's own output: equal once metricad's max-normalised
    map is min-max normalised like pytorch-grad-cam's (all-zero maps: zero in both)."""
    model, images = model_and_images
    maps, _, _, *_ = class_activation_maps(model, images, target, layer, method)
    reference, _ = _reference(model, images, method, layer, target)
    assert np.isfinite(reference).all()
    np.testing.assert_allclose(_min_max(maps.numpy()), reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("layer", "target"), CASES)
def test_grad_cam_plus_plus_differs_only_by_the_epsilon(model_and_images, layer, target):
    """Grad-CAM++, each library's own output: pytorch-grad-cam's 1e-6 in the alpha denominator
    moves the normalised maps by 6e-4 to 1e-3 on this model (gradients up to about 0.1): more
    than rounding, less than 5e-3, correlation above 0.9999. (On the trained model, with
    gradients near 1e-4, up to 0.12: see the module docstring.) Without the epsilon
    they are equal (test_raw_maps_match_pytorch_grad_cam)."""
    model, images = model_and_images
    maps, _, _, *_ = class_activation_maps(model, images, target, layer, "gradcam++")
    reference, _ = _reference(model, images, "gradcam++", layer, target)
    ours = _min_max(maps.numpy())
    difference = np.abs(ours - reference).max()
    assert 1e-5 < difference < 5e-3
    for our_map, their_map in zip(ours, reference, strict=True):
        assert np.corrcoef(our_map.ravel(), their_map.ravel())[0, 1] > 0.9999


def test_all_zero_maps_stay_zero_in_both(model_and_images):
    """A map that the ReLU zeroes everywhere: metricad gives zeros and peak 0, pytorch-grad-cam
    zeros (its epsilon keeps 0 / 0 away), not NaN."""
    model, images = model_and_images
    maps, peaks, _, *_ = class_activation_maps(model, images, "anomalous", "layer4", "gradcam")
    reference, _ = _reference(model, images, "gradcam", "layer4", "anomalous")
    assert float(peaks.abs().max()) == 0.0 and float(maps.abs().max()) == 0.0
    assert np.isfinite(reference).all() and float(np.abs(reference).max()) == 0.0
