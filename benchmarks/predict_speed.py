"""`Detector.predict` (what `python -m metricad.predict` runs per batch) against a bare forward
pass of the same network, in the same process, interleaved, best of `--repeats`.

Usage (from the repo root): python benchmarks/predict_speed.py [--images 256] [--source 256]
    [--size 96] [--batch-size 64] [--repeats 3] [--device auto]

- scores: predict on uint8 images of `--source` px (resized to `--size` as in training, the
  network, the softmax, kNN and Gaussian scores, the verdict) against a bare eval forward of
  the network on the same images, already resized and normalised on the device;
- scores + heat maps: the same with the Grad-CAM++ map of every image, against a bare forward
  and backward to the CAM layer.
The model is random (speed does not depend on the weights); the scorer is fitted on its
embeddings of random images.
"""

import metricad.numerics  # noqa: F401  (first: the pinned kernels and threads of every stage)

# isort: split
import argparse
from datetime import date

import torch
from train_speed import _images, _seconds

from metricad.data.batches import normalize
from metricad.model.inference import embed_and_score
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.params import params_from_dict
from metricad.runtime import make_deterministic, memory_format_for, select_device
from metricad.scoring.head import SCORE_NAMES, ScoringHead
from metricad.serving.detector import Detector


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--source", type=int, default=256, help="side of the images given")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    make_deterministic(0)
    device = select_device(args.device)
    params = params_from_dict({"resize": {"size": args.size}})
    model = model_from_arch(arch_from_params(params)).eval()
    layer = params.gradcam.layer
    originals, _ = _images(args.images, args.source, 1)
    arrays = list(originals.permute(0, 2, 3, 1).numpy())
    reference, _, _ = embed_and_score(model, _images(64, args.size, 2)[0], 64, device, False)
    head = ScoringHead(SCORE_NAMES, "gaussian")
    head.fit_scores(reference)
    cam = (params.gradcam.method, layer, params.gradcam.target)
    detector = Detector(model, head, cam, device, args.batch_size)
    model.to(device=device, memory_format=memory_format_for(device))
    resized, _ = _images(args.images, args.size, 1)
    inputs = [
        normalize(resized[i : i + args.batch_size].to(device))
        for i in range(0, args.images, args.batch_size)
    ]
    hooked: list[torch.Tensor] = []
    getattr(model.encoder.backbone, layer).register_forward_hook(lambda m, i, o: hooked.append(o))

    def bare_forward() -> None:
        with torch.inference_mode():
            for x in inputs:
                model.head(model.embed(x))

    def bare_backward() -> None:
        for x in inputs:
            hooked.clear()
            logits = model(x)
            torch.autograd.grad(logits[:, 1].sum(), hooked[0])

    rows = {
        "scores": (lambda: detector.predict(arrays, heatmaps=False), bare_forward),
        "scores + heat maps": (lambda: detector.predict(arrays), bare_backward),
    }
    best = {name: [float("inf"), float("inf")] for name in rows}
    for _ in range(args.repeats):
        for name, (ours, bare) in rows.items():
            best[name][0] = min(best[name][0], _seconds(ours, device))
            best[name][1] = min(best[name][1], _seconds(bare, device))
    print(
        f"predict_speed {date.today()}: {device.type}, {torch.get_num_threads()} threads, "
        f"{args.images} images of {args.source} px -> {args.size} px, batch {args.batch_size}"
    )
    print(f"{'what':20s} {'predict':>12s} {'bare':>12s} {'ratio':>6s}")
    for name, (ours, bare) in best.items():
        print(
            f"{name:20s} {args.images / ours:8.1f} img/s {args.images / bare:8.1f} img/s "
            f"{bare / ours:6.2f}"
        )


if __name__ == "__main__":
    main()
