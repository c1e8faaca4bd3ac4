"""The numeric environment of every stage: vector instruction set and thread counts pinned.

PyTorch's own kernels, oneDNN (convolutions), MKL (matrix products) and OpenBLAS (numpy,
scipy, scikit-learn) each pick their vector code by the CPU they find, and split reductions by
their thread count. Both change the last bits of a result, and 300 epochs turn the last bit
into another model. Pinned to AVX2 and to `runtime.threads` threads, the same params give the
same bytes on every x86-64 CPU with AVX2 (AVX-512 or not, any core count).

The libraries read these settings once, when they load, so a stage imports this module
before anything else (before numpy and torch): `import metricad.numerics  # isort: split`.
Importing it pins the environment; `pinned()` says what a run ran with.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import yaml

from metricad.params import RuntimeParams

# Set over whatever the user's environment holds: a setting left there from another project
# (say ONEDNN_MAX_CPU_ISA=AVX512_CORE) would otherwise change the numbers.
X86_ISA = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vector kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN, PyTorch's CPU convolutions
    "DNNL_MAX_CPU_ISA": "AVX2",  # the same, older name
    "MKL_CBWR": "AVX2,STRICT",  # MKL's conditional numerical reproducibility
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS (numpy, scipy): Haswell is its AVX2 kernel set
    # numpy's own loops (exp, log, sorting...) have AVX-512 versions; names of numpy 2.4.
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# params.py loads neither numpy nor torch, so it may come first.
DEFAULT_THREADS = RuntimeParams().threads
DEFAULT_KERNELS = RuntimeParams().cpu_kernels
PARAMS_FILE = Path("params.yaml")


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def settings_from_params(path: Path = PARAMS_FILE) -> tuple[int, str]:
    """`runtime.threads` and `runtime.cpu_kernels` from params.yaml, read without the full
    validation (which runs later, in the stage, and reports a bad value in one line); the
    defaults where absent or invalid."""
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))["runtime"]
    except (OSError, yaml.YAMLError, UnicodeDecodeError, TypeError, KeyError):
        values = {}
    if not isinstance(values, dict):
        values = {}
    threads, kernels = values.get("threads"), values.get("cpu_kernels")
    if not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        threads = DEFAULT_THREADS
    return threads, kernels if kernels in ("avx2", "native") else DEFAULT_KERNELS


def pin(threads: int, kernels: str = DEFAULT_KERNELS) -> dict[str, str]:
    """Set the thread counts and, with kernels "avx2" on x86-64, the instruction set, over
    the user's own settings; return what was set. "native" leaves the kernels to each library
    (faster on AVX-512 CPUs; the numbers then depend on the CPU)."""
    settings = dict(X86_ISA) if is_x86() and kernels == "avx2" else {}
    settings |= dict.fromkeys(THREAD_VARIABLES, str(threads))
    os.environ.update(settings)
    return settings


def pinned() -> dict[str, str | int]:
    """What this process computes with, for metrics/: the pinned variables and what torch
    reports (imported here, after the pinning)."""
    import torch

    return {
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        **{name: os.environ.get(name, "") for name in (*X86_ISA, *THREAD_VARIABLES)},
    }


PINNED = pin(*settings_from_params())
