"""Score new images with a trained pipeline: every score, the normalised score, a verdict and a
heat-map overlay per image.

    python -m metricad.predict IMAGE_OR_FOLDER_OR_GLOB ... [--model models] [--out predictions]
        [--no-heatmaps] [--batch-size 64] [--device auto]

Writes OUT/predictions.csv (path, every score, normalized, anomalous, heatmap) and, per image,
OUT/heatmaps/<name>.png (the image | its heat map, as the gradcam stage draws them). Folders
are searched recursively for PNG, JPEG, BMP and TIFF files. A file that cannot be read gets one
`error:` line and the others are still scored; the exit status is 1 when any file failed.

The CPU kernels and threads are pinned as in every stage (numerics.py: params.yaml's
runtime.threads and runtime.cpu_kernels where one is in the current folder, else the committed
defaults), so predict gives the pipeline's bits on any x86-64 CPU, AVX-512 ones included.
"""

from __future__ import annotations

import metricad.numerics  # noqa: F401, I001  (first: pins CPU kernels and threads)

# isort: split
import argparse
import glob
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from metricad.data.images import IMAGE_EXTENSIONS, load_rgb, save_png
from metricad.errors import MetricadError, run_stage
from metricad.files import write_csv
from metricad.report.plots import gradcam_panel
from metricad.serving.detector import Detector


def find_images(arguments: Sequence[str]) -> list[Path]:
    """Files as given, folders searched recursively, globs expanded; sorted within each
    argument, each file once. An argument that matches nothing is an error."""
    found: dict[Path, None] = {}
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            matches = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not matches:
                raise MetricadError(
                    f"{argument}: folder holds no image ({', '.join(sorted(IMAGE_EXTENSIONS))})"
                )
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(argument, recursive=True))
            matches = [p for p in matches if p.is_file()]
            if not matches:
                raise MetricadError(f"{argument}: no such file, folder or matching files")
        found.update(dict.fromkeys(matches))
    return list(found)


def _names(paths: Sequence[Path]) -> list[str]:
    """A heat-map file name per image: its stem, numbered where two images share one."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        count = seen.get(path.stem, 0)
        seen[path.stem] = count + 1
        names.append(f"{path.stem}.png" if count == 0 else f"{path.stem}-{count}.png")
    return names


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m metricad.predict", description=__doc__)
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER_OR_GLOB")
    parser.add_argument("--model", type=Path, default=Path("models"), metavar="DIR")
    parser.add_argument("--out", type=Path, default=Path("predictions"), metavar="DIR")
    parser.add_argument("--no-heatmaps", action="store_true", help="scores only")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the pipeline's (bit-equal scores)"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        raise MetricadError(f"--batch-size must be at least 1, got {args.batch_size}")
    detector = Detector.load(args.model, args.device, args.batch_size)
    paths = find_images(args.images)
    started = time.perf_counter()
    rows, failed = [], 0
    names = _names(paths)
    size = detector.batch_size
    for start in tqdm(range(0, len(paths), size), desc="predict", unit="batch"):
        batch, images = [], []
        chosen = slice(start, start + size)
        for path, name in zip(paths[chosen], names[chosen], strict=True):
            try:
                images.append(detector.frame(load_rgb(path), str(path)))
                batch.append((path, name))
            except MetricadError as error:
                # tqdm.write: the line starts on its own, not after the progress bar.
                tqdm.write(f"error: {error}", file=sys.stderr)
                failed += 1
        if not images:
            continue
        result = detector.predict(images, heatmaps=not args.no_heatmaps, already_framed=True)
        table = result.table.assign(path=[str(path) for path, _ in batch])
        if result.heatmaps is not None:
            table["heatmap"] = [f"heatmaps/{name}" for _, name in batch]
            for (_, name), image, heat in zip(batch, result.images, result.heatmaps, strict=True):
                save_png(gradcam_panel(image, heat, None), args.out / "heatmaps" / name)
        rows.append(table)
    if not rows:
        raise MetricadError(f"none of the {len(paths)} image(s) could be read")
    table = pd.concat(rows, ignore_index=True)
    table = table[["path", *(c for c in table.columns if c != "path")]]
    write_csv(args.out / "predictions.csv", table)
    seconds = time.perf_counter() - started
    verdict = detector.head.verdict
    threshold = float(detector.head.thresholds[detector.head.names.index(verdict)])
    print(
        f"predict: {len(table)} image(s) scored in {seconds:.1f} s, {int(table['anomalous'].sum())}"
        f" anomalous ({verdict} above {threshold:.6g}), {failed} unreadable; wrote "
        f"{args.out / 'predictions.csv'}"
    )
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
