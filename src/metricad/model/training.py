"""The training loop: cross-entropy on the metric head's logits, resumable from a saved state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from metricad.data.anomalies import kind_for_training, makes_anomalies
from metricad.data.batches import eval_batches, normalize
from metricad.data.framing import training_augments, training_crop
from metricad.errors import MetricadError
from metricad.model.recipe import batches
from metricad.model.torch_model import AnomalyNet
from metricad.model.training_run import TrainingRun, TrainingState
from metricad.params import Params, RuntimeParams, TrainParams
from metricad.runtime import memory_format_for


def settings_for_data(
    params: Params, n_images: int, real_anomalies: int, framing: str | None = None
) -> tuple[TrainParams, list[str]]:
    """The training params this data set allows, and a warning for each one changed.

    train.augment auto follows the framing (`framing`: the one the resize stage chose, None:
    resize.framing); so does train.crop, none after a framing to one pose.
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
    if real_anomalies == 0 and not makes_anomalies(kind):
        raise MetricadError(
            "split.anomalous_train_fraction is 0 and train.synthetic_anomalies is 'none': the "
            "training split holds only good images, so the two-class head has nothing to "
            "separate; set train.synthetic_anomalies (e.g. cutpaste) or the fraction above 0"
        )
    augment, crop = training_augments(params, framing), training_crop(params, framing)
    batch_size = min(train_params.batch_size, n_images)
    if batch_size < train_params.batch_size:
        warnings.append(
            f"train.batch_size={train_params.batch_size} is above the number of training "
            f"images ({n_images}); used {batch_size}"
        )
    settings = replace(
        train_params,
        synthetic_anomalies=kind,
        batch_size=batch_size,
        augment=augment,
        crop=crop,
    )
    return settings, warnings


# History keys -> DVCLive metric names (dvclive/plots/metrics/<name>.tsv).
LIVE_NAMES = {
    "train_loss": "train/loss",
    "train_accuracy": "train/accuracy",
    "test_loss": "test/loss",
    "test_accuracy": "test/accuracy",
}


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


@dataclass(frozen=True)
class TestMonitor:
    """The test split on the device, evaluated every `every` epochs and at the last one:
    logged, never used to choose anything."""

    images: torch.Tensor
    labels: torch.Tensor
    rows: int  # one fixed batch shape, no larger than the split (logged only: no padding to 64)
    every: int
    amp: bool

    @classmethod
    def of(
        cls,
        split: tuple[torch.Tensor, torch.Tensor] | None,
        device: torch.device,
        every: int,
        max_rows: int,
        amp: bool,
    ) -> TestMonitor | None:
        """None when there is no split or it is empty."""
        if split is None or not len(split[0]):
            return None
        rows = min(max_rows, len(split[0]))
        return cls(split[0].to(device), split[1].to(device), rows, every, amp)

    def measure(self, model: torch.nn.Module, done: int, epochs: int) -> dict[str, float]:
        """The test loss and accuracy after epoch `done`, or nothing off the cadence."""
        if done % self.every and done != epochs:
            return {}
        loss, accuracy = evaluate_split(model, self.images, self.labels, self.rows, self.amp)
        return {"test_loss": round(loss, 6), "test_accuracy": round(accuracy, 6)}


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

    `monitor`: the test split (TestMonitor). With `resume`, training continues from that state
    and ends with the same weights as an uninterrupted run; `save_state` is called every
    `save_every` epochs and at the end; `on_epoch` gets each history row as its epoch ends
    (live logging). `runtime` (amp, the eval batch) defaults to RuntimeParams()'s.
    """
    if len(images) < 2:
        raise ValueError("training needs at least two images")
    # channels_last on CUDA (runtime.memory_format_for); undone at the end.
    model.to(device=device, memory_format=memory_format_for(device)).train()
    run = TrainingRun.new(model, params)
    start = 0 if resume is None else run.restore(resume, epochs, params.monitor_every)
    runtime = runtime or RuntimeParams()
    amp = runtime.amp and device.type == "cuda"
    # Every image crosses to the device once, as uint8; the random draws (order, flips,
    # synthetic anomalies) stay on the CPU generator, so a run draws the same on any device.
    images = images.to(device)
    tester = TestMonitor.of(
        monitor, device, params.monitor_every, runtime.inference_batch_size, amp
    )
    # The batch count is the same every epoch (batches() merges the same short last batch).
    per_epoch = len(batches(len(images), params.batch_size, torch.Generator()))
    steps = (per_epoch, epochs * per_epoch, params.warmup_epochs * per_epoch)
    measured = run.forward if run.average is None else run.average.module  # the average
    bar = tqdm(
        range(start, epochs), "train", epochs, initial=start, unit="epoch", disable=not progress
    )
    for epoch in bar:
        row = run.epoch(epoch, images, labels, params, steps, amp)
        done = row["epoch"]
        if tester is not None:
            row |= tester.measure(measured, done, epochs)
        run.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        bar.set_postfix(loss=row["train_loss"], acc=row["train_accuracy"])
        if save_state is not None and (done == epochs or (save_every and done % save_every == 0)):
            save_state(run.snapshot(done))
    if run.average is not None:
        model.load_state_dict(run.average.module.state_dict())
    model.to(memory_format=torch.contiguous_format).eval()
    return run.history


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
