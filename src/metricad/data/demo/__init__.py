"""The demo data: a synthetic stand-in for MVTec AD. Procedural leather and carpet (textures,
each with MVTec's five defect kinds) and a bottle (an object, with MVTec's three bottle
defects), with their masks, written in MVTec's exact folder layout, so the pipeline runs
without the licensed data set.

A category is a base-image function plus its defect functions (one module each: leather,
carpet, bottle; their shared shapes in primitives). Every image
draws from its own generator seeded by (seed, category, kind, index), so one seed always gives
byte-identical files and changing one count leaves the other images unchanged.
"""

from __future__ import annotations

import os
import shutil
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from metricad.data.demo import bottle, carpet, leather
from metricad.data.demo.primitives import Category, FloatImage
from metricad.data.images import save_png
from metricad.data.manifest import DEFECT_FREE
from metricad.errors import MetricadError
from metricad.files import write_json

# Counts per folder: keys are "train_good", "test_good" and the category's defect names.
DEFAULT_GOOD_COUNTS = {"train_good": 40, "test_good": 10}
DEFAULT_DEFECT_COUNT = 8
# Written inside every generated tree; a folder without it is never replaced (it may be real data).
MARKER = ".synthetic.json"
# Below this the defects shrink to a pixel or two and the grain to noise.
MIN_IMAGE_SIZE = 32
# An alteration below this (0..1 intensity; 3 grey levels, far below the grain's own contrast)
# is not part of the mask.
_MASK_THRESHOLD = 3.0 / 255.0
CATEGORIES = {"leather": leather.CATEGORY, "carpet": carpet.CATEGORY, "bottle": bottle.CATEGORY}
DEFECTS: dict[str, tuple[str, ...]] = {
    name: tuple(category.defects) for name, category in CATEGORIES.items()
}


class Sample(NamedTuple):
    """One synthetic image: the defect-free texture, the image, and its mask (None if good)."""

    clean: np.ndarray
    image: np.ndarray
    mask: np.ndarray | None


def _category(category: str) -> Category:
    if category not in CATEGORIES:
        raise MetricadError(
            f"data.category: no synthetic data for {category!r} "
            f"(supported: {', '.join(CATEGORIES)})"
        )
    return CATEGORIES[category]


def _to_uint8(image: FloatImage) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def render_sample(
    category: str,
    kind: str,
    seed: int,
    index: int,
    image_size: int,
    split: str = "train",
    defect_scale: float = 1.0,
) -> Sample:
    """Render image `index` of `kind` ("good" or a defect name) in `split` ("train" or "test"),
    deterministic in its arguments; a defect `defect_scale` times its default size."""
    drawn = _category(category)
    # Good test images draw from their own key: under the train key, test/good/000.png was a
    # copy of train/good/000.png, and every score was measured on images seen in training.
    name = f"test/{kind}" if kind == DEFECT_FREE and split == "test" else kind
    key = [seed, zlib.crc32(category.encode()), zlib.crc32(name.encode()), index]
    rng = np.random.default_rng(key)
    clean = drawn.base(rng, image_size)
    if kind == DEFECT_FREE:
        return Sample(_to_uint8(clean), _to_uint8(clean), None)
    altered = drawn.defects[kind](clean, rng, defect_scale)
    # Filled: where an alteration's profile crosses zero inside the defect is still defect.
    mask = ndimage.binary_fill_holes(np.abs(altered - clean).max(axis=2) > _MASK_THRESHOLD)
    return Sample(_to_uint8(clean), _to_uint8(altered), mask)


def _check_arguments(
    category: str, seed: int, image_size: int, counts: dict[str, int] | None, defect_scale: float
) -> dict[str, int]:
    """Validate the arguments; return the full counts (defaults overridden by `counts`)."""
    defects = _category(category).defects
    if not _count_like(seed):
        raise MetricadError(f"synthetic seed must be a non-negative integer, got {seed!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise MetricadError(
            f"synthetic image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}"
        )
    if not defect_scale > 0:
        raise MetricadError(f"synthetic defect_scale must be positive, got {defect_scale!r}")
    full = DEFAULT_GOOD_COUNTS | dict.fromkeys(defects, DEFAULT_DEFECT_COUNT)
    for key, value in (counts or {}).items():
        if key not in full:
            raise MetricadError(
                f"synthetic counts: unknown key {key!r} (allowed: {', '.join(full)})"
            )
        if not _count_like(value):
            raise MetricadError(
                f"synthetic counts: {key} must be a non-negative integer, got {value!r}"
            )
        full[key] = value
    return full


def _count_like(value: object) -> bool:
    # bool is an int subclass, but `True` images is surely a mistake in the parameters.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def generate(
    root: str | Path,
    category: str = "leather",
    seed: int = 0,
    image_size: int = 256,
    counts: dict[str, int] | None = None,
    progress: bool = True,
    defect_scale: float = 1.0,
) -> None:
    """Write root/category/{train,test,ground_truth}/... in MVTec AD's layout.

    Files are named 000.png, 001.png, ...; masks <name>_mask.png are 0/255 L. The tree is built
    in a hidden temporary folder and renamed into place when complete; an existing tree is
    replaced only if it was written by this function (it carries the MARKER file) or is empty.
    """
    full = _check_arguments(category, seed, image_size, counts, defect_scale)
    root = Path(root)
    target = root / category
    if target.exists() and not _replaceable(target):
        raise MetricadError(
            f"{target}: exists and was not written by the synthetic generator "
            f"(no {MARKER}); refusing to replace it"
        )
    jobs = [("train", DEFECT_FREE, i) for i in range(full["train_good"])]
    jobs += [("test", DEFECT_FREE, i) for i in range(full["test_good"])]
    for defect in _category(category).defects:
        jobs += [("test", defect, i) for i in range(full[defect])]

    # Hidden names: scan_mvtec and users never mistake the unfinished tree for a category.
    building = root / f".{category}.building-{os.getpid()}"
    retired = root / f".{category}.replaced-{os.getpid()}"
    for leftover in (building, retired):  # from a killed run that had the same process id
        shutil.rmtree(leftover, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        for split, kind, index in tqdm(jobs, desc="synthetic", disable=not progress):
            sample = render_sample(category, kind, seed, index, image_size, split, defect_scale)
            save_png(sample.image, building / split / kind / f"{index:03d}.png")
            if sample.mask is not None:
                save_png(sample.mask, building / "ground_truth" / kind / f"{index:03d}_mask.png")
        write_json(
            building / MARKER,
            {
                "category": category,
                "counts": full,
                "defect_scale": defect_scale,
                "image_size": image_size,
                "seed": seed,
            },
        )
        if target.exists():
            os.replace(target, retired)
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def _replaceable(folder: Path) -> bool:
    """Only an earlier synthetic tree or an empty folder may be replaced: never real data."""
    return folder.is_dir() and ((folder / MARKER).is_file() or not any(folder.iterdir()))
