"""The training loop: cross-entropy on the metric head's logits, resumable from a saved state."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from metricad import portable_math
from metricad.data.anomalies import corrupt_batch, kind_for_training
from metricad.data.batches import (
    MIN_ROWS,
    augment,
    eval_batches,
    normalize,
    photometric,
    shift,
)
from metricad.errors import MetricadError
from metricad.model.torch_model import AnomalyNet
from metricad.params import Params, RuntimeParams, TrainParams
from metricad.runtime import memory_format_for


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


def settings_for_data(
    params: Params, n_images: int, real_anomalies: int
) -> tuple[TrainParams, list[str]]:
    """The training params this data set allows, and a warning for each one changed.

    A batch larger than the training set is the training set. With no defect image in
    training although the params ask for some (fraction > 0, but each defect type has too
    few images to spare one), training uses synthetic anomalies instead. Fewer than two
    images, or good images only with no synthetic anomalies asked for, cannot train.
    """
    train_params, warnings = params.train, []
    if n_images < 2:
        raise MetricadError(
            f"the training split holds {n_images} image(s); training needs at least 2 "
            "(BatchNorm): add good training images"
        )
    fraction = params.split.anomalous_train_fraction
    kind = kind_for_training(train_params.synthetic_anomalies, real_anomalies, fraction)
    if kind != train_params.synthetic_anomalies:
        warnings.append(
            f"split.anomalous_train_fraction={fraction} put no defect image in training "
            f"(too few defect images); trained with train.synthetic_anomalies={kind}"
        )
    if real_anomalies == 0 and kind == "none":
        raise MetricadError(
            "split.anomalous_train_fraction is 0 and train.synthetic_anomalies is 'none': the "
            "training split holds only good images, so the two-class head has nothing to "
            "separate; set train.synthetic_anomalies (e.g. cutpaste) or the fraction above 0"
        )
    batch_size = min(train_params.batch_size, n_images)
    if batch_size < train_params.batch_size:
        warnings.append(
            f"train.batch_size={train_params.batch_size} is above the number of training "
            f"images ({n_images}); used {batch_size}"
        )
    return replace(train_params, synthetic_anomalies=kind, batch_size=batch_size), warnings


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


# History keys -> DVCLive metric names (dvclive/plots/metrics/<name>.tsv).
LIVE_NAMES = {
    "train_loss": "train/loss",
    "train_accuracy": "train/accuracy",
    "test_loss": "test/loss",
    "test_accuracy": "test/accuracy",
}


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


def weight_average(model: AnomalyNet, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights and of the BatchNorm statistics (and the
    AdaCos scale), updated after every step; None when `decay` is 0."""
    if decay == 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def batches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch; a last batch of fewer than MIN_ROWS joins the one before (BatchNorm
    needs two rows, and fewer than four take kernels that depend on the CPU, data.MIN_ROWS)."""
    chunks = list(torch.randperm(count, generator=generator).split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < MIN_ROWS:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


@torch.inference_mode()
def evaluate_split(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    amp: bool = False,
) -> tuple[float, float]:
    """Loss and accuracy in eval mode, without the training margin (`amp`: bfloat16 autocast,
    as in training; CUDA only).

    Sums stay on the device until the end: one host synchronisation per pass, not per batch.
    """
    was_training = model.training
    model.eval()
    device = images.device
    loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    done = 0
    for batch, count in eval_batches(images, batch_size):
        y, done = labels[done : done + count], done + count
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(normalize(batch)).float()[:count]
        loss += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss.item() / len(images), correct.item() / len(images)


def train(
    model: AnomalyNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    params: TrainParams,
    epochs: int,
    device: torch.device,
    monitor: tuple[torch.Tensor, torch.Tensor] | None = None,
    resume: TrainingState | None = None,
    save_state: Callable[[TrainingState], None] | None = None,
    save_every: int = 0,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    runtime: RuntimeParams | None = None,
) -> list[dict[str, float]]:
    """Train `model` in place and return the per-epoch history.

    `runtime` (amp, the monitor's batch size) defaults to RuntimeParams()'s.

    `monitor` (the test split) is only evaluated and logged, never used to choose anything.
    With `resume`, training continues from that state and ends with the same weights as an
    uninterrupted run; `save_state` is called every `save_every` epochs and at the end.
    `on_epoch` gets each new history row as soon as its epoch ends (live logging).
    """
    if len(images) < 2:
        raise ValueError("training needs at least two images")
    # channels_last on CUDA (runtime.memory_format_for); the caller gets its model back in
    # the default layout (the end of this function).
    model.to(device=device, memory_format=memory_format_for(device)).train()
    forward = torch.compile(model) if params.compile else model
    optimizer = make_optimizer(model, params)
    average = weight_average(model, params.ema_decay)
    shuffle_rng = torch.Generator().manual_seed(params.seed)
    history: list[dict[str, float]] = []
    start = 0
    if resume is not None:
        model.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        if average is not None and resume.average is not None:
            average.load_state_dict(resume.average)
        shuffle_rng.set_state(resume.shuffle_rng)
        torch.set_rng_state(resume.torch_rng)
        history, start = list(resume.history), resume.epoch
        if history and start < epochs and start % params.monitor_every:
            # A shorter run monitored its last epoch off the cadence; continued, it is
            # an epoch like any other (as in a run that was this long from the start).
            history[-1] = {k: v for k, v in history[-1].items() if not k.startswith("test_")}
    runtime = runtime or RuntimeParams()
    amp = runtime.amp and device.type == "cuda"
    # Every image crosses to the device once, as uint8; the random draws (order, flips,
    # synthetic anomalies) stay on the CPU generator, so a run draws the same on any device.
    images = images.to(device)
    if monitor is not None and len(monitor[0]):
        monitor = (monitor[0].to(device), monitor[1].to(device))
    else:
        monitor = None

    def snapshot(epoch: int) -> TrainingState:
        return TrainingState(
            epoch,
            {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            optimizer.state_dict(),
            shuffle_rng.get_state(),
            torch.get_rng_state(),
            list(history),
            None
            if average is None
            else {k: v.cpu().clone() for k, v in average.state_dict().items()},
        )

    # The batch count is the same every epoch (batches() merges the same short last batch).
    steps_per_epoch = len(batches(len(images), params.batch_size, torch.Generator()))
    total_steps, warmup_steps = epochs * steps_per_epoch, params.warmup_epochs * steps_per_epoch
    # What the run hands back and the monitor measures: the average when there is one.
    trained = model if average is None else average.module

    bar = tqdm(
        range(start, epochs),
        desc="train",
        unit="epoch",
        disable=not progress,
        initial=start,
        total=epochs,
    )
    for epoch in bar:
        # Summed on the device (float64, as Python floats would): one sync per epoch.
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for step, index in enumerate(
            batches(len(images), params.batch_size, shuffle_rng), start=epoch * steps_per_epoch
        ):
            x, y = images[index.to(device)], labels[index]
            if params.augment:
                x = augment(x, shuffle_rng)
            if params.max_shift:
                x = shift(x, params.max_shift, shuffle_rng)
            real_anomalous = y == 1
            x, y, synthetic_masks = corrupt_batch(
                x,
                y,
                params.synthetic_anomalies,
                params.synthetic_share,
                params.synthetic_jitter,
                shuffle_rng,
            )
            if params.photometric:
                x = photometric(x, params.photometric, shuffle_rng)
            x, y = normalize(x), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                if model.segmenter is None:
                    logits, map_logits = forward(x, y), None
                else:
                    logits, map_logits = model.forward_with_map(x, y)
            loss = F.cross_entropy(logits.float(), y)
            if map_logits is not None:
                loss = loss + params.segmentation_weight * segmentation_loss(
                    map_logits.float(), synthetic_masks, real_anomalous
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(params, step, total_steps, warmup_steps)
            optimizer.step()
            if average is not None:
                average.update_parameters(model)
            total_loss += loss.detach().double() * len(index)
            correct += (logits.argmax(1) == y).sum()
        done = epoch + 1
        row = {
            "epoch": done,
            "train_loss": round(total_loss.item() / len(images), 6),
            "train_accuracy": round(correct.item() / len(images), 6),
            "head_scale": round(float(model.head.scale), 6),
        }
        if monitor is not None and (done % params.monitor_every == 0 or done == epochs):
            test_loss, test_accuracy = evaluate_split(
                forward if average is None else trained, *monitor, runtime.inference_batch_size, amp
            )
            row |= {"test_loss": round(test_loss, 6), "test_accuracy": round(test_accuracy, 6)}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        bar.set_postfix(loss=row["train_loss"], acc=row["train_accuracy"])
        if save_state is not None and (done == epochs or (save_every and done % save_every == 0)):
            save_state(snapshot(done))
    if average is not None:
        model.load_state_dict(average.module.state_dict())
    model.to(memory_format=torch.contiguous_format).eval()
    return history


def training_summary(
    history: list[dict[str, float]], epochs: int, n_train: int, n_train_anomalous: int
) -> dict[str, Any]:
    """metrics/train.json: the last epoch's figures, the set's size and, when the test split
    was monitored, the epoch of its best accuracy (logged, never used to choose)."""
    summary: dict[str, Any] = {key: value for key, value in history[-1].items() if key != "epoch"}
    summary |= {"epochs": epochs, "n_train": n_train, "n_train_anomalous": n_train_anomalous}
    monitored = [row for row in history if "test_accuracy" in row]
    if monitored:
        # The first epoch of the best accuracy, as pandas' idxmax picked it.
        best = max(monitored, key=lambda row: row["test_accuracy"])
        summary |= {
            "best_test_accuracy": float(best["test_accuracy"]),
            "best_test_accuracy_epoch": int(best["epoch"]),
        }
    return summary
