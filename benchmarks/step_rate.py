"""Bare training steps of the network at other image sizes and batches: what a smaller or
larger demo would cost, as a ratio against the reference step (96 px, batch 16: the yardstick
of the issues' machine speeds, the demo's size until it became 64 px) measured in the same
process, interleaved with it, best of `--repeats`.

Usage (from the repo root): python benchmarks/step_rate.py [--shapes 96x16 80x16 64x16 96x32]
    [--repeats 3] [--steps 4]

A step is AnomalyNet + AdaCos forward, cross entropy, backward and a fused Adam step on one
batch already in memory (no augmentation, no monitor): the kernels' cost alone. Threads and
kernels are the pinned ones of params.yaml (runtime.threads, runtime.cpu_kernels), and so is the
network (model.*), the photo whole: the issues' reference rates (23.5 img/s at 96 px) are the
demo's network, so run it where params.yaml is the committed demo's (its 96 px network is
the same since the demo became 64 px: only resize.size and the data changed).
"""

import metricad.numerics  # noqa: F401  (first: the pinned kernels and threads of every stage)

# isort: split
import argparse
import dataclasses
import time
from datetime import date

import torch
import torch.nn.functional as F

from metricad.model.recipe import make_optimizer
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.params import load_params
from metricad.runtime import make_deterministic

REFERENCE = (96, 16)


def step_timer(size: int, batch: int, steps: int):
    """A function that runs `steps` training steps at this shape and returns seconds per image."""
    params = load_params()
    params = dataclasses.replace(params, resize=dataclasses.replace(params.resize, size=size))
    make_deterministic(0)
    # Framed whole: resize.framing auto is a choice the resize stage makes, not a network.
    model = model_from_arch(arch_from_params(params, "whole")).train()
    optimizer = make_optimizer(model, params.train)
    images = torch.randn(batch, 3, size, size)
    labels = torch.arange(batch) % 2

    def step() -> None:
        loss = F.cross_entropy(model(images, labels), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):  # warm-up: oneDNN chooses and caches its kernels on first use
        step()

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - start) / (steps * batch)

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["96x16", "80x16", "64x16", "96x32"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    shapes = [tuple(int(part) for part in shape.split("x")) for shape in args.shapes]
    print(
        f"{date.today()} torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"kernels {torch.backends.cpu.get_cpu_capability()}; reference {REFERENCE[0]} px, "
        f"batch {REFERENCE[1]}"
    )
    reference = step_timer(*REFERENCE, args.steps)
    for size, batch in shapes:
        timer = step_timer(size, batch, args.steps)
        best, best_reference = float("inf"), float("inf")
        for _ in range(args.repeats):  # interleaved: a slow moment hits both alike
            best_reference = min(best_reference, reference())
            best = min(best, timer())
        print(
            f"{size:4d} px, batch {batch:3d}: {1 / best:6.1f} img/s  reference "
            f"{1 / best_reference:6.1f} img/s  speed ratio {best_reference / best:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
