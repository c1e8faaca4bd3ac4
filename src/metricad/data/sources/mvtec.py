"""`data.source: mvtec`: one category of an MVTec AD tree (data.root/data.category):
train/good/, test/<defect or good>/, ground_truth/<defect>/<name>_mask.png."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from metricad.data.manifest import DEFECT_FREE, source_table
from metricad.data.sources import SOURCES
from metricad.data.sources.listing import (
    check_files,
    images_by_stem,
    subfolders,
    warn_missing_masks,
)
from metricad.errors import MetricadError
from metricad.params import DataParams

MVTEC_CATEGORIES = (
    "bottle",
    "cable",
    "capsule",
    "carpet",
    "grid",
    "hazelnut",
    "leather",
    "metal_nut",
    "pill",
    "screw",
    "tile",
    "toothbrush",
    "transistor",
    "wood",
    "zipper",
)
MASK_SUFFIX = "_mask"
# Appended to errors about the tree's shape, so the user sees what is expected.
_LAYOUT = "(MVTec AD layout expected: train/good/, test/<defect>/, ground_truth/<defect>/)"


@SOURCES.register("mvtec", root="folder")
def mvtec_source(data: DataParams, workspace: Path) -> pd.DataFrame:
    return scan_mvtec(Path(str(data.root)), data.category)


def scan_mvtec(root: str | Path, category: str) -> pd.DataFrame:
    """List one category of an MVTec AD tree: every image with label, defect, mask and the
    split MVTec gives it (train/ or test/), as the source table; rows sorted by (that split,
    defect, name). A defect image without a mask is kept with mask_path "" and reported by one
    warning. Every image and mask is checked to be complete and readable, and every mask to
    match its image's size, so a broken file stops here, before any manifest is written.
    """
    root = Path(root)
    if not root.is_dir():
        raise MetricadError(f"data.root: folder {root} does not exist")
    category_dir = root / category
    if not category_dir.is_dir():
        present = ", ".join(p.name for p in subfolders(root)) or "none"
        raise MetricadError(
            f"data.category: folder {category_dir} does not exist (categories in {root}: {present})"
        )

    train_good = category_dir / "train" / DEFECT_FREE
    if not train_good.is_dir():
        raise MetricadError(f"{train_good}: folder does not exist {_LAYOUT}")
    rows = [(path, 0, DEFECT_FREE, "train") for path in images_by_stem(train_good).values()]
    if not rows:
        raise MetricadError(
            f"{train_good}: folder has no images; put the defect-free training images there"
        )

    test_dir = category_dir / "test"
    if not test_dir.is_dir():
        raise MetricadError(f"{test_dir}: folder does not exist {_LAYOUT}")
    defect_dirs = subfolders(test_dir)
    if not defect_dirs:
        raise MetricadError(f"{test_dir}: folder has no good/ or defect subfolders {_LAYOUT}")
    defect_images: dict[str, dict[str, Path]] = {}
    for defect_dir in defect_dirs:
        images = images_by_stem(defect_dir)
        if not images:
            raise MetricadError(f"{defect_dir}: folder has no images; add some or remove it")
        if defect_dir.name != DEFECT_FREE:
            defect_images[defect_dir.name] = images
        rows += [
            (path, int(defect_dir.name != DEFECT_FREE), defect_dir.name, "test")
            for path in images.values()
        ]

    masks = _scan_masks(category_dir / "ground_truth", defect_images)
    rows.sort(key=lambda row: (row[3], row[2], row[0].name))
    check_files([row[0] for row in rows], masks)
    # Warned after the checks: a run that stops on a broken file shows only that error.
    warn_missing_masks(
        category_dir / "ground_truth",
        [str(path) for path, label, *_ in rows if label and path not in masks],
    )
    return source_table(
        (
            (path, f"{given_split}/{defect}/{path.stem}", label, defect, given_split)
            for path, label, defect, given_split in rows
        ),
        masks,
    )


def _scan_masks(ground_truth: Path, defect_images: dict[str, dict[str, Path]]) -> dict[Path, Path]:
    """Map each defect image to its <stem>_mask file; a mask without its image is an error."""
    masks: dict[Path, Path] = {}
    if not ground_truth.is_dir():
        return masks
    for mask_dir in subfolders(ground_truth):
        if mask_dir.name == DEFECT_FREE:
            raise MetricadError(f"{mask_dir}: defect-free images have no masks; remove this folder")
        images = defect_images.get(mask_dir.name, {})
        for stem, mask in images_by_stem(mask_dir).items():
            if not stem.endswith(MASK_SUFFIX):
                raise MetricadError(
                    f"{mask}: mask names must end in {MASK_SUFFIX} (<image name>{MASK_SUFFIX}"
                    f"{mask.suffix}); rename it or move it out of {ground_truth}"
                )
            image_stem = stem.removesuffix(MASK_SUFFIX)
            image = images.get(image_stem)
            if image is None:
                expected = ground_truth.parent / "test" / mask_dir.name / f"{image_stem}.png"
                raise MetricadError(
                    f"{mask}: mask has no defect image {expected}; add the image or remove "
                    f"the mask (masks are named <image name>{MASK_SUFFIX}.png)"
                )
            masks[image] = mask
    return masks
