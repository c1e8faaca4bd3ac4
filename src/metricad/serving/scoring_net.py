"""The network and its scoring head as one torch module (no I/O): what the ONNX export traces
(export.py), from raw uint8 pixels to the verdict."""

from __future__ import annotations

import torch
from torch import nn

from metricad.data.batches import IMAGENET_MEAN, IMAGENET_STD
from metricad.model.torch_model import AnomalyNet
from metricad.model.views import view_probabilities
from metricad.scoring.head import ScoringHead


class ScoringNet(nn.Module):
    """The network and its scoring head as one torch module: what the ONNX file computes.
    Outputs: the embedding of each view ((N, V, D): V = 1 for `single`, 8 for `dihedral`),
    every score (score_<name>, float64), the verdict score normalised and the verdict."""

    def __init__(self, model: AnomalyNet, head: ScoringHead, views: str = "single") -> None:
        super().__init__()
        self.model, self.head, self.views = model.eval(), head.eval(), views
        # Not `mean`: the ONNX graph keeps buffer names, and torch's mean op's output has it.
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (images.float() / 255.0 - self.pixel_mean) / self.pixel_std
        embedding, own = self.model.embed_and_scores(x, self.views)
        prob_anomalous = view_probabilities(self.model, embedding)[:, 1]
        values, normalized, anomalous = self.head(embedding, prob_anomalous, own)
        return embedding, *values.unbind(dim=1), normalized, anomalous


def output_names(head: ScoringHead) -> list[str]:
    """The ONNX outputs, the scores by their names in predictions.csv, prefixed: ONNX names
    must not clash with its ops."""
    return ["embedding", *(f"score_{name}" for name in head.names), "normalized", "anomalous"]
