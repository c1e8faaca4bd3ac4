"""Training and GradCAM throughput on this machine's device; prints one line per setting.

Usage (from the repo root, after `dvc repro resize` or on the fly for synthetic images):
    python benchmarks/train_speed.py [--sizes 96 512] [--epochs 3] [--device auto]

For each input size it times training epochs (fp32, and bfloat16 autocast on CUDA), the
eval-mode embedding pass and Grad-CAM++, and checks that two GradCAM passes are identical.
"""

import argparse
import time

import torch

from metricad.checkpoint import arch_from_params, model_from_arch
from metricad.gradcam import heatmaps_for_images
from metricad.inference import embed_and_score
from metricad.params import params_from_dict
from metricad.runtime import make_deterministic, select_device
from metricad.training import train


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(size: int, epochs: int, images_count: int, device: torch.device, amp: bool) -> str:
    params = params_from_dict({"resize": {"size": size}, "train": {"amp": amp, "seed": 0}})
    make_deterministic(0)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(
        0, 256, (images_count, 3, size, size), generator=generator, dtype=torch.uint8
    )
    labels = torch.arange(images_count) % 2
    model = model_from_arch(arch_from_params(params))
    train(model, images, labels, params.train, 1, device, progress=False)  # warm-up
    _sync(device)
    start = time.perf_counter()
    train(model, images, labels, params.train, epochs, device, progress=False)
    _sync(device)
    per_epoch = (time.perf_counter() - start) / epochs
    start = time.perf_counter()
    embed_and_score(model, images, params.train.batch_size, device, progress=False)
    _sync(device)
    embed_rate = images_count / (time.perf_counter() - start)
    layer = "layer2" if size <= 128 else "layer3"

    def cams() -> tuple[torch.Tensor, ...]:
        return heatmaps_for_images(
            model,
            images,
            device,
            params.train.batch_size,
            method="gradcam++",
            layer=layer,
            progress=False,
        )

    start = time.perf_counter()
    first = cams()
    _sync(device)
    cam_rate = images_count / (time.perf_counter() - start)
    second = cams()
    identical = all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    return (
        f"{device.type:4s} size {size:4d}  amp {'on ' if amp else 'off'}  "
        f"train {images_count / per_epoch:7.1f} img/s ({per_epoch:6.3f} s/epoch of "
        f"{images_count})  embed {embed_rate:7.1f} img/s  gradcam++ {cam_rate:7.1f} img/s  "
        f"gradcam repeatable: {identical}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    device = select_device(args.device)
    print(
        f"torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
    )
    for size in args.sizes:
        for amp in (False, True) if device.type == "cuda" else (False,):
            print(bench(size, args.epochs, args.images, device, amp), flush=True)


if __name__ == "__main__":
    main()
