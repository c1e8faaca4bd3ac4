"""`gaussian`: Mahalanobis distance to one Gaussian of the good training embeddings, its
covariance shrunk (Ledoit-Wolf) because a few dozen images cannot pin down 512 dimensions
(CutPaste's density estimator). Fitted and applied with exact.py's fixed-order float64
arithmetic: scikit-learn's LedoitWolf (tests/test_scores.py checks the two agree) runs
OpenBLAS and LAPACK, whose last bits differ between Intel and AMD processors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from metricad.portable_math import sqrt
from metricad.scoring import SCORES
from metricad.scoring.base import Score
from metricad.scoring.exact import gram, row_dots, spd_inverse

MIN_SHRINKAGE = 1e-3


def ledoit_wolf(good: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mean, shrunk covariance, shrinkage) of float64 rows (N, D), N >= 2: scikit-learn's
    LedoitWolf estimate (Ledoit and Wolf 2004), the covariance pulled towards a scaled
    identity by as much as the sample's noise calls for."""
    count, dims = good.shape
    location = good.mean(dim=0)
    centred = good - location
    products = gram(centred)  # count times the empirical covariance
    covariance = products / count
    mu = torch.diagonal(covariance).sum() / dims
    squares = (centred * centred).sum(dim=1)
    # sum(X2.T @ X2) = sum over images of (the image's squared norm) squared.
    beta_sum = (squares * squares).sum()
    delta_sum = (products * products).sum(dim=1).sum() / count**2
    beta = (beta_sum / count - delta_sum) / (dims * count)
    delta = (delta_sum - 2.0 * mu * torch.diagonal(covariance).sum() + dims * mu * mu) / dims
    shrinkage = 0.0 if float(delta) <= 0 else float(torch.minimum(beta, delta) / delta)
    if count <= dims:
        # Fewer images than dimensions and no shrinkage (two images always give 0) leave the
        # covariance singular; a floor keeps it invertible (scikit-learn took a pseudo-inverse).
        shrinkage = max(shrinkage, MIN_SHRINKAGE)
    shrunk = (1.0 - shrinkage) * covariance
    shrunk += torch.eye(dims, dtype=torch.float64) * (shrinkage * mu)
    return location, shrunk, shrinkage


@SCORES.register("gaussian")
class GaussianScore(Score):
    def __init__(self) -> None:
        super().__init__()
        self.fitted = False
        self.shrinkage: float | None = None
        self.register_buffer("location", torch.zeros(1, dtype=torch.float64))
        self.register_buffer("precision", torch.ones(1, 1, dtype=torch.float64))

    def fit(self, good: torch.Tensor) -> list[str]:
        count, dims = good.shape
        if count < 2:
            self.fitted, self.shrinkage = False, None
            self.location = torch.zeros(dims, dtype=torch.float64)
            self.precision = torch.eye(dims, dtype=torch.float64)
            return [
                f"evaluate: the Gaussian score needs at least 2 good training images, the "
                f"training split has {count}; its AUROC is undefined (null)"
            ]
        location, covariance, shrinkage = ledoit_wolf(good.to(torch.float64))
        self.fitted, self.shrinkage = True, shrinkage
        # Identical embeddings have no spread (a zero covariance): every distance is then 0,
        # as scikit-learn's pseudo-inverse gave.
        degenerate = not float(torch.diagonal(covariance).sum()) > 0
        self.location = location
        self.precision = torch.zeros_like(covariance) if degenerate else spd_inverse(covariance)
        if count > dims:
            return []
        return [
            f"evaluate: the Gaussian score fits {dims} dimensions on {count} good training "
            f"images; its covariance is shrunk towards a scaled identity (Ledoit-Wolf "
            f"shrinkage {self.shrinkage:.3f})"
        ]

    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, network: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        centred = unit - self.location
        distance = sqrt((row_dots(centred, self.precision.T) * centred).sum(dim=1).clamp_min(0))
        # Not fitted (under two good images): NaN, which no threshold flags.
        return distance if self.fitted else torch.full_like(distance, float("nan"))

    def used(self) -> dict[str, float | int]:
        return {} if self.shrinkage is None else {"gaussian_shrinkage": round(self.shrinkage, 6)}

    def get_extra_state(self) -> dict[str, Any]:
        return {"fitted": self.fitted, "shrinkage": self.shrinkage}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.fitted, self.shrinkage = bool(state["fitted"]), state["shrinkage"]
