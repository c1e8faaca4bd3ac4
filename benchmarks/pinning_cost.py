"""What the pinned numerics (metricad/numerics.py) cost in training speed on this machine.

Trains the demo's network (96 px, batch 16, 60 random images) for a few epochs in fresh
processes, pinned (AVX2 kernels, `--threads` threads: what every stage runs with) and native
(the host's own kernels and thread count), interleaved, best of `--repeats`; prints img/s and
the ratio. Usage: python benchmarks/pinning_cost.py [--epochs 3] [--repeats 3] [--threads 2]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from metricad.numerics import THREAD_VARIABLES, X86_ISA

RUN = """
import sys
if sys.argv[1] == "pinned":
    import metricad.numerics  # noqa: F401
import time
import torch
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.params import params_from_dict
from metricad.runtime import make_deterministic
from metricad.model.training import train
epochs = int(sys.argv[2])
params = params_from_dict({})
make_deterministic(0)
images = torch.randint(0, 256, (60, 3, 96, 96), dtype=torch.uint8)
labels = torch.arange(60) % 2
model = model_from_arch(arch_from_params(params))
train(model, images, labels, params.train, 1, torch.device("cpu"), progress=False)
start = time.perf_counter()
train(model, images, labels, params.train, epochs, torch.device("cpu"), progress=False)
seconds = time.perf_counter() - start
print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), 60 * epochs / seconds)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / "metricad-pinning-cost"
    folder.mkdir(exist_ok=True)
    (folder / "run.py").write_text(RUN)
    (folder / "params.yaml").write_text(f"runtime:\n  threads: {args.threads}\n")
    native_env = {k: v for k, v in os.environ.items() if k not in (*X86_ISA, *THREAD_VARIABLES)}
    best: dict[str, tuple[str, str, float]] = {}
    for _ in range(args.repeats):
        for mode in ("pinned", "native"):
            done = subprocess.run(
                [sys.executable, "run.py", mode, str(args.epochs)],
                cwd=folder,
                env=native_env,
                capture_output=True,
                text=True,
                check=True,
            )
            capability, threads, rate = done.stdout.split()
            if mode not in best or float(rate) > best[mode][2]:
                best[mode] = (capability, threads, float(rate))
    for mode, (capability, threads, rate) in best.items():
        print(f"{mode:7s} {capability:7s} {threads:>2s} threads  {rate:6.1f} img/s")
    print(f"pinned / native: {best['pinned'][2] / best['native'][2]:.2f}")


if __name__ == "__main__":
    main()
