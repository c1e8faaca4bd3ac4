"""Elementwise math whose last bits do not depend on the CPU vendor.

On the CPU, torch.exp, log, sqrt and acos run MKL's vector math library, which picks its code
by CPU vendor: Intel and AMD processors get other last bits (docs/reproducibility.md). These
rewrites use ATen's own exp2 and rsqrt kernels, the same on every AVX2 CPU.
"""

from __future__ import annotations

import math

import torch

LOG2_E = 1.0 / math.log(2.0)


def exp(values: torch.Tensor) -> torch.Tensor:
    """e**x as 2**(x * log2(e))."""
    return torch.exp2(values * LOG2_E)


def sqrt(values: torch.Tensor) -> torch.Tensor:
    """The square root of non-negative values as x * rsqrt(x); 0 stays 0."""
    return torch.where(values > 0, values * torch.rsqrt(values), 0.0)
