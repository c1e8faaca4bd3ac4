"""Export the trained network and its scoring as one ONNX file: a uint8 image batch in (N, 3,
size, size, RGB, already resized), the embedding and every score out, as `predict` gives them.

    python -m metricad.export [--model models] [--out models/model.onnx]

Needs the `export` extra (`pip install -e '.[export]'`: onnx, onnxscript; onnxruntime to run
it). tests/test_predict.py checks onnxruntime's scores against the PyTorch path.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from metricad.data import IMAGENET_MEAN, IMAGENET_STD
from metricad.detector import Detector
from metricad.errors import MetricadError, run_stage
from metricad.files import atomic_path
from metricad.scores import Scoring
from metricad.torch_model import AnomalyNet

# The scores by their names in predictions.csv, prefixed: ONNX names must not clash with its ops.
OUTPUTS = ("embedding", "score_softmax", "score_knn", "score_gaussian")


class ScoringNet(nn.Module):
    """The network, the head's probability and the embedding scores as one torch module
    (float32): what the ONNX file computes."""

    def __init__(self, model: AnomalyNet, scoring: Scoring) -> None:
        super().__init__()
        self.model = model.eval()
        scorer = scoring.scorer
        self.k = scorer.k
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("bank", torch.from_numpy(scorer.bank).float())
        fitted = scorer.location is not None
        dims = scorer.bank.shape[1]
        location = scorer.location if fitted else torch.zeros(dims)
        precision = scorer.precision if fitted else torch.eye(dims)
        self.fitted = fitted
        self.register_buffer("location", torch.as_tensor(location).float())
        self.register_buffer("precision", torch.as_tensor(precision).float())

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (images.float() / 255.0 - self.mean) / self.std
        embedding = self.model.embed(x)
        softmax = torch.softmax(self.model.head(embedding), dim=1)[:, 1]
        unit = F.normalize(embedding)
        distances = 1.0 - unit @ self.bank.T
        knn = torch.topk(distances, self.k, dim=1, largest=False).values.mean(dim=1)
        centred = unit - self.location
        gaussian = ((centred @ self.precision) * centred).sum(dim=1).clamp_min(0).sqrt()
        if not self.fitted:
            gaussian = torch.full_like(gaussian, float("nan"))
        return embedding, softmax, knn, gaussian


def export_onnx(detector: Detector, out: str | Path) -> None:
    """Write the ONNX file of `detector` (dynamic batch size) to `out`, atomically."""
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise MetricadError(
            "export: the ONNX exporter needs the export extra: pip install -e '.[export]'"
        ) from None
    net = ScoringNet(detector.model.cpu(), detector.scoring).eval()
    example = torch.zeros(2, 3, detector.size, detector.size, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(
            net,
            (example,),
            input_names=["image"],
            output_names=list(OUTPUTS),
            dynamic_shapes={"images": {0: batch}},
            dynamo=True,
            verbose=False,
        )
        program.save(tmp)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m metricad.export", description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models"), metavar="DIR")
    parser.add_argument("--out", type=Path, default=Path("models/model.onnx"))
    args = parser.parse_args(argv)
    export_onnx(Detector.load(args.model, "cpu"), args.out)
    print(
        f"export: wrote {args.out} (inputs: image, uint8 N x 3 x size x size; outputs: "
        f"{', '.join(OUTPUTS)})"
    )


if __name__ == "__main__":
    run_stage(main)
