"""One training run's moving parts: the batch transform chain, a step, an epoch, and the
state a run saves and resumes from. training.train() drives them epoch by epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from metricad.data.anomalies import corrupt_batch
from metricad.data.batches import augment, crop, normalize, photometric, shift
from metricad.model.recipe import (
    WeightAverage,
    batches,
    learning_rate,
    make_optimizer,
    segmentation_loss,
    weight_average,
)
from metricad.model.torch_model import AnomalyNet
from metricad.params import TrainParams


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped (resume.py saves it)."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    shuffle_rng: torch.Tensor
    torch_rng: torch.Tensor
    history: list[dict[str, float]]
    average: dict[str, torch.Tensor] | None = None  # the weight average, when there is one

    def final_weights(self) -> dict[str, torch.Tensor]:
        """The weights a run that ended here hands back: the average, when there is one."""
        if self.average is None:
            return self.model
        prefix = "module."
        return {k[len(prefix) :]: v for k, v in self.average.items() if k.startswith(prefix)}


def transformed_batch(
    x: torch.Tensor, y: torch.Tensor, params: TrainParams, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of uint8 images as the network trains on it: flips and turns, shift, crop,
    synthetic anomalies (with their masks), lighting; every draw from `generator`, in this
    order.
    Returns the images, labels, synthetic masks and which rows are real defects."""
    if params.augment:
        x = augment(x, generator)
    if params.max_shift:
        x = shift(x, params.max_shift, generator)
    if params.crop:
        x = crop(x, params.crop, generator)
    real_anomalous = y == 1
    x, y, masks = corrupt_batch(
        x,
        y,
        params.synthetic_anomalies,
        params.synthetic_share,
        params.synthetic_jitter,
        generator,
    )
    if params.photometric:
        x = photometric(x, params.photometric, generator)
    return x, y, masks, real_anomalous


@dataclass
class TrainingRun:
    """The model, its optimizer and weight average, the shuffle generator and the history."""

    model: AnomalyNet
    forward: torch.nn.Module  # the model, or its torch.compile'd wrapper
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None
    shuffle_rng: torch.Generator
    history: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def new(cls, model: AnomalyNet, params: TrainParams) -> TrainingRun:
        """A run from the start: the optimizer, the weight average and the seeded generator."""
        return cls(
            model,
            torch.compile(model) if params.compile else model,
            make_optimizer(model, params),
            weight_average(model, params.ema_decay),
            torch.Generator().manual_seed(params.seed),
        )

    def restore(self, state: TrainingState, epochs: int, monitor_every: int) -> int:
        """Continue from `state`; returns the epoch to start from."""
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        if self.average is not None and state.average is not None:
            self.average.load_state_dict(state.average)
        self.shuffle_rng.set_state(state.shuffle_rng)
        torch.set_rng_state(state.torch_rng)
        self.history = list(state.history)
        if self.history and state.epoch < epochs and state.epoch % monitor_every:
            # A shorter run monitored its last epoch off the cadence; continued, it is an
            # epoch like any other (as in a run that was this long from the start).
            last = self.history[-1]
            self.history[-1] = {k: v for k, v in last.items() if not k.startswith("test_")}
        return state.epoch

    def snapshot(self, epoch: int) -> TrainingState:
        return TrainingState(
            epoch,
            {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            self.optimizer.state_dict(),
            self.shuffle_rng.get_state(),
            torch.get_rng_state(),
            list(self.history),
            None
            if self.average is None
            else {k: v.cpu().clone() for k, v in self.average.state_dict().items()},
        )

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        masks: torch.Tensor,
        real_anomalous: torch.Tensor,
        params: TrainParams,
        lr: float,
        amp: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a normalised batch; the loss and the logits."""
        model = self.model
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            if model.segmenter is None:
                logits, map_logits = self.forward(x, y), None
            else:
                logits, map_logits = model.forward_with_map(x, y)
        loss = F.cross_entropy(logits.float(), y)
        if map_logits is not None:
            loss = loss + params.segmentation_weight * segmentation_loss(
                map_logits.float(), masks, real_anomalous
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        if self.average is not None:
            self.average.update_parameters(model)
        return loss, logits

    def epoch(
        self,
        epoch: int,
        images: torch.Tensor,
        labels: torch.Tensor,
        params: TrainParams,
        steps: tuple[int, int, int],
        amp: bool,
    ) -> dict[str, float]:
        """Train one epoch (`steps`: per epoch, in all, of warm-up); its history row."""
        per_epoch, total_steps, warmup_steps = steps
        device = images.device
        # Summed on the device (float64, as Python floats would): one sync per epoch.
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for step, index in enumerate(
            batches(len(images), params.batch_size, self.shuffle_rng), start=epoch * per_epoch
        ):
            x, y = images[index.to(device)], labels[index]
            x, y, masks, real_anomalous = transformed_batch(x, y, params, self.shuffle_rng)
            x, y = normalize(x), y.to(device, non_blocking=True)
            lr = learning_rate(params, step, total_steps, warmup_steps)
            loss, logits = self.step(x, y, masks, real_anomalous, params, lr, amp)
            total_loss += loss.detach().double() * len(index)
            correct += (logits.argmax(1) == y).sum()
        return {
            "epoch": epoch + 1,
            "train_loss": round(total_loss.item() / len(images), 6),
            "train_accuracy": round(correct.item() / len(images), 6),
            "head_scale": round(float(self.model.head.scale), 6),
        }
