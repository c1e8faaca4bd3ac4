"""`gaussian`: Mahalanobis distance to one Gaussian of the good training embeddings, its
covariance shrunk (Ledoit-Wolf) because a few dozen images cannot pin down 512 dimensions
(CutPaste's density estimator)."""

from __future__ import annotations

from typing import Any

import torch
from sklearn.covariance import LedoitWolf

from metricad.params import EvaluateParams
from metricad.scoring import SCORES
from metricad.scoring.base import Score


@SCORES.register("gaussian")
class GaussianScore(Score):
    def __init__(self) -> None:
        super().__init__()
        self.fitted = False
        self.shrinkage: float | None = None
        self.register_buffer("location", torch.zeros(1, dtype=torch.float64))
        self.register_buffer("precision", torch.ones(1, 1, dtype=torch.float64))

    def fit(self, good: torch.Tensor, settings: EvaluateParams) -> list[str]:
        count, dims = good.shape
        if count < 2:
            self.fitted, self.shrinkage = False, None
            self.location = torch.zeros(dims, dtype=torch.float64)
            self.precision = torch.eye(dims, dtype=torch.float64)
            return [
                f"evaluate: the Gaussian score needs at least 2 good training images, the "
                f"training split has {count}; its AUROC is undefined (null)"
            ]
        estimator = LedoitWolf().fit(good.to(torch.float64).numpy())
        self.fitted, self.shrinkage = True, float(estimator.shrinkage_)
        self.location = torch.from_numpy(estimator.location_)
        self.precision = torch.from_numpy(estimator.precision_)
        if count > dims:
            return []
        return [
            f"evaluate: the Gaussian score fits {dims} dimensions on {count} good training "
            f"images; its covariance is shrunk towards a scaled identity (Ledoit-Wolf "
            f"shrinkage {self.shrinkage:.3f})"
        ]

    def forward(self, unit: torch.Tensor, prob_anomalous: torch.Tensor) -> torch.Tensor:
        centred = unit - self.location
        distance = ((centred @ self.precision) * centred).sum(dim=1).clamp_min(0).sqrt()
        # Not fitted (under two good images): NaN, which no threshold flags.
        return distance if self.fitted else torch.full_like(distance, float("nan"))

    def used(self) -> dict[str, float | int]:
        return {} if self.shrinkage is None else {"gaussian_shrinkage": round(self.shrinkage, 6)}

    def get_extra_state(self) -> dict[str, Any]:
        return {"fitted": self.fitted, "shrinkage": self.shrinkage}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.fitted, self.shrinkage = bool(state["fitted"]), state["shrinkage"]
