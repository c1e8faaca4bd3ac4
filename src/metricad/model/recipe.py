"""The recipe's pieces around the network: the optimizer, the learning rate of a step, the
weight average, the order of the batches and the segmentation head's loss."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from metricad import portable_math
from metricad.data.batches import MIN_ROWS
from metricad.model.torch_model import AnomalyNet
from metricad.params import TrainParams


def make_optimizer(model: AnomalyNet, params: TrainParams) -> torch.optim.Optimizer:
    if params.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=params.lr,
            momentum=params.momentum,
            weight_decay=params.weight_decay,
        )
    # fused: one ATen kernel whose sqrt is the CPU's own instruction; the default per-tensor
    # Adam takes sqrt from MKL's vector math library, whose bits differ between CPU vendors.
    return torch.optim.Adam(
        model.parameters(), lr=params.lr, weight_decay=params.weight_decay, fused=True
    )


def schedule_depends_on_epochs(params: TrainParams) -> bool:
    """Whether the learning rate of a step depends on the run's total epoch count (cosine).
    When it does not, the first N epochs of a longer run are an N-epoch run, step for step:
    a finished run can be continued to more epochs, and one long run measured on the way."""
    return params.lr_schedule == "cosine"


def learning_rate(params: TrainParams, step: int, total_steps: int, warmup_steps: int) -> float:
    """The learning rate of optimizer step `step` (from 0): a linear warm-up over the first
    `warmup_steps`, then `lr` throughout (constant) or a cosine decay towards 0 at the last
    step (cosine). A function of the step alone, so a resumed run needs no scheduler state."""
    if step < warmup_steps:
        return params.lr * (step + 1) / warmup_steps
    if params.lr_schedule == "constant":
        return params.lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return params.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


# A map cell is "anomalous" in the segmentation target when synthetic pixels cover more than
# this share of it (the head's map is a quarter of the input's side).
MASK_COVER = 0.25


def segmentation_loss(
    logits: torch.Tensor, masks: torch.Tensor, real_anomalous: torch.Tensor
) -> torch.Tensor:
    """Focal loss (gamma 2, Lin et al. 2017; DRAEM's) of the segmentation logits (N, h, w)
    against the synthetic masks (N, H, W) pooled to the logits' size. Real defect images
    (`real_anomalous`, (N,) bool) have no mask in training and are left out. Written with
    sigmoid, exp2 and log1p: ATen's own kernels, the same bits on every CPU."""
    target = F.adaptive_avg_pool2d(masks[:, None].float(), logits.shape[-2:])[:, 0]
    target = (target > MASK_COVER).float()
    probability = torch.sigmoid(logits)
    # Binary cross-entropy with logits, the stable form.
    cross_entropy = (
        logits.clamp_min(0) - logits * target + torch.log1p(portable_math.exp(-logits.abs()))
    )
    agreement = probability * target + (1 - probability) * (1 - target)
    focal = cross_entropy * (1 - agreement) ** 2
    keep = (~real_anomalous).to(logits.device, torch.float32)
    return (focal.mean(dim=(1, 2)) * keep).sum() / keep.sum().clamp_min(1.0)


class WeightAverage(AveragedModel):
    """torch's AveragedModel with its exponential moving average (get_ema_multi_avg_fn) of
    every parameter and buffer, the same bits and the same state_dict; its update lists the
    pairs of tensors once, grouped by dtype, not at every step, and hands them to torch's own
    update (2.9 ms a step instead of 5.8 on the 2-core development machine: 1.3 % of the
    demo's training step)."""

    def __init__(self, model: AnomalyNet, decay: float) -> None:
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self._pairs_of: int | None = None  # id() of the model: a Module attribute would be a child
        self._pairs: dict[torch.dtype, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

    def update_parameters(self, model: nn.Module) -> None:
        if int(self.n_averaged) == 0:
            super().update_parameters(model)  # the first update copies the weights
            return
        if self._pairs_of != id(model):
            self._pairs_of, self._pairs = id(model), {}
            averaged = itertools.chain(self.module.parameters(), self.module.buffers())
            current = itertools.chain(model.parameters(), model.buffers())
            for mine, theirs in zip(averaged, current, strict=True):
                pair = self._pairs.setdefault(mine.dtype, ([], []))
                pair[0].append(mine.detach())
                pair[1].append(theirs.detach())
        for mine, theirs in self._pairs.values():
            self.multi_avg_fn(mine, theirs, self.n_averaged)
        self.n_averaged += 1


def weight_average(model: AnomalyNet, decay: float) -> WeightAverage | None:
    """An exponential moving average of the weights and of the BatchNorm statistics (and the
    AdaCos scale), updated after every step; None when `decay` is 0."""
    if decay == 0:
        return None
    return WeightAverage(model, decay)


def batches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch; a last batch of fewer than MIN_ROWS joins the one before (BatchNorm
    needs two rows, and fewer than four take kernels that depend on the CPU, data.MIN_ROWS)."""
    chunks = list(torch.randperm(count, generator=generator).split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < MIN_ROWS:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks
