"""metricad's train loop, embedding pass and Grad-CAM against bare steps of the same network.

Usage (from the repo root): python benchmarks/train_speed.py [--params params.yaml]
    [--size N] [--batch-size N] [--monitor-every N] [--train-images 52] [--defects 20]
    [--test-images 30] [--repeats 3] [--device auto] [--amp] [--compile]

The recipe is the committed params.yaml's (train.*, resize.size, the runtime's batch of the
eval passes), each option overriding one key; the image counts are the demo's (52 training
images, 20 of them defects, 30 monitored test images). Every figure is a ratio against a
reference measured in the same process, interleaved with it, best of `--repeats` (single
timings on a shared machine swing by about 20 %):
- train: `training.train()` (flips, synthetic anomalies, the learning-rate schedule, the
  weight average, the test monitor every `train.monitor_every` epochs, the loss bookkeeping)
  against a bare training step (AnomalyNet + AdaCos, Adam, the same batches already
  normalised on the device, in the layout train() uses there: channels_last on CUDA, the
  default on the CPU), both over the same images; then train() with one part of the recipe
  switched off at a time, so each part's cost is the difference of two ratios;
- embed: `inference.embed_and_score()` from uint8 images against a bare eval forward;
- gradcam: `gradcam.heatmaps_for_images()` against a bare forward + backward to the layer;
- small data: `train()` per epoch on 10 images (9 monitored) against one bare step of 10.
It also checks that two Grad-CAM passes give identical maps. The default run is the demo's
setting on the CPU; the article's is `--size 512 --amp` on a GPU.
"""

import metricad.numerics  # noqa: F401  (first: the pinned kernels and threads of every stage)

# isort: split
import argparse
import dataclasses
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from metricad.analysis.gradcam import heatmaps_for_images
from metricad.data.batches import normalize
from metricad.model.inference import embed_and_score
from metricad.model.recipe import batches, make_optimizer
from metricad.model.torch_model import AnomalyNet, arch_from_params, model_from_arch
from metricad.model.training import train
from metricad.params import Params, TrainParams, params_from_dict
from metricad.runtime import make_deterministic, memory_format_for, select_device
from metricad.validation import set_dotted


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _seconds(run: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


def _images(count: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8)
    return images, torch.arange(count) % 2


def _model(params: Params, device: torch.device) -> AnomalyNet:
    model = model_from_arch(arch_from_params(params))
    return model.to(device=device, memory_format=memory_format_for(device)).train()


class BareStep:
    """The reference: optimizer steps on batches prepared once, nothing else."""

    def __init__(self, params: Params, images: torch.Tensor, labels: torch.Tensor, device):
        self.model = _model(params, device)
        self.forward = torch.compile(self.model) if params.train.compile else self.model
        self.optimizer = make_optimizer(self.model, params.train)
        self.amp = params.runtime.amp and device.type == "cuda"
        order = batches(len(images), params.train.batch_size, torch.Generator().manual_seed(0))
        self.batches = [(normalize(images[i].to(device)), labels[i].to(device)) for i in order]

    def epoch(self) -> None:
        for x, y in self.batches:
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.forward(x, y)
            loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


def _best_pair(
    reference: Callable[[], object], measured: Callable[[], object], repeats: int, device
) -> tuple[float, float]:
    """Best (shortest) seconds of each, measured alternately."""
    times = [(_seconds(reference, device), _seconds(measured, device)) for _ in range(repeats)]
    return min(t[0] for t in times), min(t[1] for t in times)


def _line(name: str, count: int, reference: float, measured: float, what: str) -> str:
    return (
        f"{name:9s} metricad {count / measured:8.1f} img/s   bare {count / reference:8.1f} img/s"
        f"   ratio {reference / measured:5.2f}   ({what})"
    )


# train() with one part of the recipe switched off: its train.* changes, and whether the
# test split is monitored.
PARTS = {
    "no test monitor": ({}, False),
    "no weight average": ({"ema_decay": 0.0}, True),
    "no synthetic anomalies": ({"synthetic_anomalies": "none"}, True),
    "no flips and turns": ({"augment": False}, True),
}


def _train_times(
    params: Params,
    device: torch.device,
    counts: tuple[int, int, int],
    epochs: int,
    repeats: int,
    parts: dict[str, tuple[dict[str, object], bool]],
) -> tuple[float, dict[str, float]]:
    """Best seconds of `epochs` bare epochs, and of a `train()` call over the same epochs with
    the recipe ("train") and with each of `parts`; `counts`: training images, defects among
    them, monitored test images."""
    count, defects, monitored = counts
    images, _ = _images(count, params.resize.size, 0)
    labels = (torch.arange(count) < defects).long()
    monitor = _images(monitored, params.resize.size, 1)
    bare = BareStep(params, images, labels, device)
    variants = {"train": (params.train, monitor)} | {
        name: (dataclasses.replace(params.train, **changes), monitor if monitoring else None)
        for name, (changes, monitoring) in parts.items()
    }

    def trainer(train_params: TrainParams, split: tuple | None) -> Callable[[], object]:
        model = _model(params, device)
        return lambda: train(
            model,
            images,
            labels,
            train_params,
            epochs,
            device,
            split,
            progress=False,
            runtime=params.runtime,
        )

    calls = {name: trainer(*variant) for name, variant in variants.items()}
    bare.epoch()  # warm-up (and compilation with --compile)
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in ("bare", *calls)}
    for _ in range(repeats):  # interleaved: a slow minute of the host hits every variant
        times["bare"].append(_seconds(lambda: [bare.epoch() for _ in range(epochs)], device))
        for name, call in calls.items():
            times[name].append(_seconds(call, device))
    best = {name: min(seconds) for name, seconds in times.items()}
    return best.pop("bare"), best


def bench_train(params: Params, args: argparse.Namespace, device: torch.device) -> list[str]:
    epochs = params.train.monitor_every  # one monitor pass per timed call, as in a long run
    counts = (args.train_images, args.defects, args.test_images)
    reference, measured = _train_times(params, device, counts, epochs, args.repeats, PARTS)
    recipe = params.train
    lines = [
        _line(
            "train",
            args.train_images * epochs,
            reference,
            measured["train"],
            f"{epochs} epochs of {args.train_images} images ({args.defects} defects), batch "
            f"{recipe.batch_size}, synthetic {recipe.synthetic_anomalies}, weight average "
            f"{recipe.ema_decay}, monitor of {args.test_images} every {epochs} epochs",
        )
    ]
    for name in PARTS:
        ratio, recipe_ratio = reference / measured[name], reference / measured["train"]
        lines.append(
            f"  {name:24s} ratio {ratio:5.2f}   (the part costs {ratio - recipe_ratio:+.3f} "
            "of a bare step)"
        )
    return lines


def bench_small_data(params: Params, args: argparse.Namespace, device: torch.device) -> str:
    epochs = args.small_epochs
    reference, measured = _train_times(params, device, (10, 4, 9), epochs, args.repeats, {})
    per_epoch, bare_per_epoch = measured["train"] / epochs * 1000, reference / epochs * 1000
    return (
        f"small     metricad {per_epoch:8.1f} ms/epoch   bare {bare_per_epoch:8.1f} ms/epoch"
        f"   overhead {per_epoch - bare_per_epoch:6.1f} ms/epoch   (10 images, 9 monitored "
        f"every {params.train.monitor_every} epochs; 1000 epochs: {per_epoch:.0f} s)"
    )


def bench_inference(params: Params, args: argparse.Namespace, device: torch.device) -> list[str]:
    count, batch = args.inference_images, params.runtime.inference_batch_size
    images, _ = _images(count, args.size, 2)
    model = _model(params, device).eval()
    prepared = [normalize(images[s : s + batch].to(device)) for s in range(0, count, batch)]
    amp = params.runtime.amp and device.type == "cuda"
    layer = args.layer or ("layer2" if args.size <= 128 else "layer3")
    hooked = getattr(model.encoder.backbone, layer)

    @torch.inference_mode()
    def bare_embed() -> None:
        for x in prepared:
            with torch.autocast(device.type, torch.bfloat16, enabled=amp):
                model.embed(x)

    def bare_backward() -> None:
        captured: list[torch.Tensor] = []
        hook = hooked.register_forward_hook(lambda _m, _i, out: captured.append(out))
        for x in prepared:
            with torch.autocast(device.type, torch.bfloat16, enabled=amp):
                score = model(x)[:, 1].sum()
            torch.autograd.grad(score, captured.pop())
        hook.remove()

    def embed() -> None:
        embed_and_score(model, images, batch, device, progress=False, amp=params.runtime.amp)

    def cams() -> tuple[torch.Tensor, ...]:
        return heatmaps_for_images(
            model, images, device, batch, "anomalous", layer, "gradcam++", False, params.runtime.amp
        )

    for warm_up in (bare_embed, embed, bare_backward, cams):
        warm_up()
    embed_times = _best_pair(bare_embed, embed, args.repeats, device)
    lines = [_line("embed", count, *embed_times, f"batch {batch}")]
    reference, measured = _best_pair(bare_backward, cams, args.repeats, device)
    first, second = cams(), cams()
    repeatable = all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    lines.append(
        _line("gradcam++", count, reference, measured, f"{layer}, batch {batch}")
        + f"   repeatable: {repeatable}"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="the recipe (default: committed)")
    parser.add_argument("--size", type=int, help="resize.size (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="train.batch_size")
    parser.add_argument("--monitor-every", type=int, help="train.monitor_every")
    parser.add_argument("--inference-batch-size", type=int, help="runtime.inference_batch_size")
    parser.add_argument("--train-images", type=int, default=52)
    parser.add_argument("--defects", type=int, default=20, help="of the training images")
    parser.add_argument("--test-images", type=int, default=30)
    parser.add_argument("--inference-images", type=int, default=128)
    parser.add_argument("--small-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layer", default=None, help="Grad-CAM layer (layer2 up to 128 px)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA only)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the train step")
    args = parser.parse_args()
    device = select_device(args.device)
    recipe = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))
    overrides = {
        "resize.size": args.size,
        "train.batch_size": args.batch_size,
        "train.monitor_every": args.monitor_every,
        "train.compile": args.compile or None,
        "runtime.inference_batch_size": args.inference_batch_size,
        "runtime.amp": args.amp,
    }
    for key, value in overrides.items():
        if value is not None:
            set_dotted(recipe, key, value)
    params = params_from_dict(recipe)
    args.size = params.resize.size
    make_deterministic(0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"{date.today()}  torch {torch.__version__}  {device.type} ({name})  "
        f"threads {torch.get_num_threads()}  kernels {torch.backends.cpu.get_cpu_capability()}  "
        f"{args.size} px  amp {args.amp and device.type == 'cuda'}  compile {args.compile}  "
        f"recipe {args.params}",
        flush=True,
    )
    for line in bench_train(params, args, device):
        print(line, flush=True)
    for line in bench_inference(params, args, device):
        print(line, flush=True)
    print(bench_small_data(params, args, device), flush=True)


if __name__ == "__main__":
    main()
