"""Device choice and determinism, shared by every stage that runs the network."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from metricad.errors import MetricadError


def select_device(spec: str) -> torch.device:
    """`auto` takes CUDA when present, else the CPU; `cuda` without a GPU is a user error."""
    if spec == "cuda" and not torch.cuda.is_available():
        raise MetricadError("params: runtime.device is 'cuda' but no CUDA device is available")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(spec)


def make_deterministic(seed: int) -> None:
    """Seed every generator and ask torch for deterministic kernels."""
    # cuBLAS needs this set before its first call to be deterministic.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # Some CUDA kernels have no deterministic version; warn there instead of failing.
    # torch.use_deterministic_algorithms sets this switch and torch.compile's copy of it, whose
    # config loads torch._dynamo: 1.6 s a stage. Nothing here compiles: the switch alone.
    torch._C._set_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
    torch.backends.cudnn.benchmark = False


def memory_format_for(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA, where it is the fast layout for convolutions (1.6x for a bf16
    training step). The CPU keeps the default layout: channels_last is only about 5 %
    faster there, and it rounds differently, so the demo would train another model."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format
