"""Export the trained network and its scoring head as one ONNX file: a uint8 image batch in
(N, 3, size, size, RGB, already resized); the embedding, every score, the normalised score and
the verdict out, as `predict` gives them.

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

from metricad.errors import MetricadError, run_stage
from metricad.files import atomic_path
from metricad.serving.detector import Detector
from metricad.serving.scoring_net import ScoringNet, output_names


def export_onnx(detector: Detector, out: str | Path) -> None:
    """Write the ONNX file of `detector` (dynamic batch size) to `out`, atomically."""
    try:
        import onnxscript.optimizer
    except ImportError:
        raise MetricadError(
            "export: the ONNX exporter needs the export extra: pip install -e '.[export]'"
        ) from None
    net = ScoringNet(detector.model.cpu(), detector.head, detector.views).eval()
    example = torch.zeros(2, 3, detector.size, detector.size, dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(
            net,
            (example,),
            input_names=["image"],
            output_names=output_names(detector.head),
            dynamic_shapes={"images": {0: batch}},
            dynamo=True,
            # Not the exporter's whole optimizer: its pattern rewriter takes most of the export
            # (8 views: 170 s with it, 71 s without), and onnxruntime fuses when it loads the
            # file. Its constant folding stays (unfolded CastLike nodes make onnxruntime warn).
            optimize=False,
            verbose=False,
        )
        onnxscript.optimizer.fold_constants(program.model)
        onnxscript.optimizer.remove_unused_nodes(program.model)
        program.save(tmp)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m metricad.export", description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models"), metavar="DIR")
    parser.add_argument("--out", type=Path, default=Path("models/model.onnx"))
    args = parser.parse_args(argv)
    detector = Detector.load(args.model, "cpu")
    export_onnx(detector, args.out)
    print(
        f"export: wrote {args.out} (inputs: image, uint8 N x 3 x size x size; outputs: "
        f"{', '.join(output_names(detector.head))})"
    )


if __name__ == "__main__":
    run_stage(main)
