"""`knn`: mean cosine distance to the k nearest good training embeddings (brute force: every
dot product in a fixed order, exact.py, and a top-k; no thread-dependent search structure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from metricad.scoring import SCORES
from metricad.scoring.base import Score
from metricad.scoring.exact import row_dots
from metricad.validation import ranged


@dataclass(frozen=True)
class KnnSettings:
    """score.knn: the score's own settings."""

    k: int = ranged(1, 10000, default=5)  # how many nearest good embeddings are averaged


@SCORES.register("knn", settings=KnnSettings)
class KnnScore(Score):
    def __init__(self, settings: KnnSettings) -> None:
        super().__init__()
        self.asked = settings.k
        self.k = self.asked
        self.register_buffer("bank", torch.zeros(1, 1, dtype=torch.float64))

    def fit(self, good: torch.Tensor) -> list[str]:
        self.bank = good.to(torch.float64).clone()
        self.k = min(self.asked, len(good))
        if self.k < self.asked:
            return [
                f"score.knn.k={self.asked} is above the number of good training images "
                f"({len(good)}); used k={self.k}"
            ]
        return []

    def forward(
        self, unit: torch.Tensor, prob_anomalous: torch.Tensor, network: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        distances = 1.0 - row_dots(unit, self.bank)
        return torch.topk(distances, self.k, dim=1, largest=False).values.mean(dim=1)

    def used(self) -> dict[str, float | int]:
        return {"knn_k": self.k}

    def get_extra_state(self) -> dict[str, Any]:
        return {"k": self.k}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.k = int(state["k"])
