"""Class activation maps for AnomalyNet, in eval mode only: the hook on a backbone layer, the
target class, and the method registered in cams/ (Grad-CAM, Grad-CAM++, HiResCAM).

Pure torch, no I/O. A map is computed for one target class per image at one backbone
layer, upsampled to the input size, and returned normalised by its own maximum together
with that raw maximum (the "peak"), so a map that is zero everywhere stays recognisable.
"""

from __future__ import annotations

import typing

import numpy as np
import torch
import torch.nn.functional as F

from metricad.analysis.cams import CAMS
from metricad.data.batches import eval_batches, normalize
from metricad.model.torch_model import AnomalyNet
from metricad.params import CamMethod, CamTarget
from metricad.runtime import memory_format_for

METHODS = typing.get_args(CamMethod)
TARGETS = typing.get_args(CamTarget)
CLASS_INDEX = {"good": 0, "anomalous": 1}


def class_activation_maps(
    model: AnomalyNet,
    images: torch.Tensor,
    target: str = "anomalous",
    layer: str = "layer4",
    method: str = "gradcam",
) -> tuple[torch.Tensor, ...]:
    """Maps for a batch of normalised images (N, 3, H, W), and what the same forward pass gave.

    Returns (maps (N, H, W) in [0, 1], peaks (N,), target class index (N,), embeddings (N, D),
    class probabilities (N, C)): predict scores and explains an image in one pass.
    Refuses a model in training mode: Dropout2d and batch statistics would make the map
    change from run to run, the original article's unexplained instability.
    """
    if model.training:
        raise ValueError("class_activation_maps needs the model in eval mode (model.eval())")
    if method not in METHODS or target not in TARGETS:
        raise ValueError(f"method must be one of {METHODS}, target one of {TARGETS}")
    captured: list[torch.Tensor] = []
    hook = getattr(model.encoder.backbone, layer).register_forward_hook(
        lambda _module, _inputs, output: captured.append(output)
    )
    try:
        with torch.enable_grad():
            embeddings = model.embed(images)
            logits = model.head(embeddings)
            if target == "predicted":
                classes = logits.argmax(dim=1)
            else:
                classes = torch.full((len(images),), CLASS_INDEX[target], device=images.device)
            # A one-hot product, not gather: gather's backward is a scatter-add, which CUDA
            # runs with atomics (maps that change in the last bits from run to run).
            score = (logits * F.one_hot(classes, logits.shape[1])).sum()
            (gradients,) = torch.autograd.grad(score, captured[0])
    finally:
        hook.remove()
    # Under autocast the layer runs in bfloat16; the map itself is computed in float32.
    activations, gradients = captured[0].detach().float(), gradients.float()
    cams = F.relu(CAMS[method](activations, gradients))
    cams = F.interpolate(cams, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peaks = cams.amax(dim=(1, 2))
    maps = torch.where(peaks[:, None, None] > 0, cams / peaks.clamp_min(1e-12)[:, None, None], 0.0)
    probabilities = torch.softmax(logits.detach().float(), dim=1)
    return maps, peaks, classes, embeddings.detach().float(), probabilities


def heatmaps_for_images(
    model: AnomalyNet,
    images: torch.Tensor,
    device: torch.device,
    batch_size: int,
    target: str = "anomalous",
    layer: str = "layer4",
    method: str = "gradcam",
    progress: bool = True,
    amp: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Batch-wise maps (N, H, W), peaks (N,) and target classes (N,) for uint8 images
    (N, 3, H, W), with the embeddings (N, D) and class probabilities (N, C) of the same forward
    passes (one network pass per batch serves both scores and maps); results on the CPU.

    `amp`: the network in bfloat16 autocast on CUDA (ignored on the CPU).
    """
    model.to(device=device, memory_format=memory_format_for(device))
    parts = []
    for batch, count in eval_batches(images, batch_size, "gradcam" if progress else None):
        x = normalize(batch.to(device))
        with torch.autocast(device.type, torch.bfloat16, enabled=amp and device.type == "cuda"):
            explained = class_activation_maps(model, x, target, layer, method)
        parts.append([t[:count].cpu() for t in explained])
    if not parts:
        classes, dim = model.head.weight.shape
        return (
            torch.zeros(0, *images.shape[-2:]),
            torch.zeros(0),
            torch.zeros(0, dtype=torch.long),
            torch.zeros(0, dim),
            torch.zeros(0, classes),
        )
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def maps_per_target(
    model: AnomalyNet,
    images: torch.Tensor,
    device: torch.device,
    layer: str,
    methods: tuple[str, ...],
) -> dict[tuple[str, str], np.ndarray]:
    """{(method, target): maps} for the anomalous and the good target: a defect lowers the
    good score, so explaining 'good' its contribution is negative, the CAM's ReLU removes it
    and the heat moves to intact areas (the article's "inverted" maps)."""
    return {
        (method, target): heatmaps_for_images(
            model, images, device, max(len(images), 1), target, layer, method, progress=False
        )[0].numpy()
        for method in methods
        for target in ("anomalous", "good")
    }
