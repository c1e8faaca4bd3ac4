"""MVTec AD folder layout: scanning a category into a manifest, the seeded train/test split
(normal train images plus a fraction of each defect type, as in the article), and the
manifest CSV."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from metricad.errors import MetricadError
from metricad.files import atomic_path
from metricad.images import check_image

DEFECT_FREE = "good"
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
# The split and defect name of the synthetic training anomalies wherever they sit beside real
# images (GradCAM's rows, the t-SNE maps).
SYNTHETIC = "synthetic"
MANIFEST_COLUMNS = ["path", "label", "defect", "mask_path", "mvtec_split", "split"]

# MVTec ships PNG; the others let users bring their own images in the same layout.
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
_MASK_SUFFIX = "_mask"
# Appended to errors about the tree's shape, so the user sees what is expected.
_LAYOUT = "(MVTec AD layout expected: train/good/, test/<defect>/, ground_truth/<defect>/)"
# How many missing-mask images the warning names before it only counts.
_WARN_LISTED = 10


def _visible(folder: Path) -> list[Path]:
    """Entries of `folder` without hidden ones (.DS_Store, editors' and our own temp files)."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as error:  # permissions, or a folder removed while scanning
        raise MetricadError(f"{folder}: cannot list folder ({error.strerror})") from None


def _images(folder: Path) -> dict[str, Path]:
    """Image files of `folder` by stem; two images with one stem would be ambiguous."""
    found: dict[str, Path] = {}
    for entry in _visible(folder):
        if not (entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS):
            continue
        if entry.stem in found:
            raise MetricadError(
                f"{folder}: two images share the name {entry.stem!r} "
                f"({found[entry.stem].name}, {entry.name})"
            )
        found[entry.stem] = entry
    return found


def _subfolders(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_dir()]


def scan_mvtec(root: str | Path, category: str) -> pd.DataFrame:
    """List one category of an MVTec AD tree: every image with label, defect, mask and split.

    Columns are MANIFEST_COLUMNS without `split`, rows sorted by (mvtec_split, defect, name).
    A defect image without a mask is kept with mask_path "" and reported by one warning.
    Every image and mask is checked to be complete and readable (`check_image`) and every mask
    to match its image's size, so a broken file stops here, before any manifest is written.
    """
    root = Path(root)
    if not root.is_dir():
        raise MetricadError(f"data.root: folder {root} does not exist")
    category_dir = root / category
    if not category_dir.is_dir():
        present = ", ".join(p.name for p in _subfolders(root)) or "none"
        raise MetricadError(
            f"data.category: folder {category_dir} does not exist (categories in {root}: {present})"
        )

    train_good = category_dir / "train" / DEFECT_FREE
    if not train_good.is_dir():
        raise MetricadError(f"{train_good}: folder does not exist {_LAYOUT}")
    rows = [(path, 0, DEFECT_FREE, "train") for path in _images(train_good).values()]
    if not rows:
        raise MetricadError(
            f"{train_good}: folder has no images; put the defect-free training images there"
        )

    test_dir = category_dir / "test"
    if not test_dir.is_dir():
        raise MetricadError(f"{test_dir}: folder does not exist {_LAYOUT}")
    defect_dirs = _subfolders(test_dir)
    if not defect_dirs:
        raise MetricadError(f"{test_dir}: folder has no good/ or defect subfolders {_LAYOUT}")
    defect_images: dict[str, dict[str, Path]] = {}
    for defect_dir in defect_dirs:
        images = _images(defect_dir)
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
    _check_files([row[0] for row in rows], masks)
    # Warned after the checks: a run that stops on a broken file shows only that error.
    missing = [str(path) for path, label, *_ in rows if label and path not in masks]
    if missing:
        listed = ", ".join(missing[:_WARN_LISTED])
        more = f" and {len(missing) - _WARN_LISTED} more" if len(missing) > _WARN_LISTED else ""
        warnings.warn(
            f"{category_dir / 'ground_truth'}: no mask for {len(missing)} defect image(s): "
            f"{listed}{more}",
            stacklevel=2,
        )

    return pd.DataFrame(
        [
            {
                "path": path.as_posix(),
                "label": label,
                "defect": defect,
                "mask_path": masks[path].as_posix() if path in masks else "",
                "mvtec_split": mvtec_split,
            }
            for path, label, defect, mvtec_split in rows
        ],
        columns=MANIFEST_COLUMNS[:-1],
    )


def _check_files(images: list[Path], masks: dict[Path, Path]) -> None:
    """Every file readable, every mask the size of its image (both named when they differ)."""
    for image in images:
        width, height = check_image(image)
        if image not in masks:
            continue
        mask_width, mask_height = check_image(masks[image])
        if (mask_width, mask_height) != (width, height):
            raise MetricadError(
                f"{masks[image]}: mask is {mask_width}x{mask_height} but its image {image} is "
                f"{width}x{height}; masks must have their image's size"
            )


def _scan_masks(ground_truth: Path, defect_images: dict[str, dict[str, Path]]) -> dict[Path, Path]:
    """Map each defect image to its <stem>_mask file; a mask without its image is an error."""
    masks: dict[Path, Path] = {}
    if not ground_truth.is_dir():
        return masks
    for mask_dir in _subfolders(ground_truth):
        if mask_dir.name == DEFECT_FREE:
            raise MetricadError(f"{mask_dir}: defect-free images have no masks; remove this folder")
        images = defect_images.get(mask_dir.name, {})
        for stem, mask in _images(mask_dir).items():
            if not stem.endswith(_MASK_SUFFIX):
                raise MetricadError(
                    f"{mask}: mask names must end in {_MASK_SUFFIX} (<image name>{_MASK_SUFFIX}"
                    f"{mask.suffix}); rename it or move it out of {ground_truth}"
                )
            image_stem = stem.removesuffix(_MASK_SUFFIX)
            image = images.get(image_stem)
            if image is None:
                expected = ground_truth.parent / "test" / mask_dir.name / f"{image_stem}.png"
                raise MetricadError(
                    f"{mask}: mask has no defect image {expected}; add the image or remove "
                    f"the mask (masks are named <image name>{_MASK_SUFFIX}.png)"
                )
            masks[image] = mask
    return masks


def split_manifest(
    scan: pd.DataFrame,
    anomalous_train_fraction: float,
    seed: int,
    validation_fraction: float = 0.0,
) -> pd.DataFrame:
    """Add `split`: MVTec's train images and round(fraction * n) seeded-random images of each
    defect type go to "train", everything else to "test"; then round(validation_fraction * n)
    seeded-random train/good images go to "validation" (held out of training; MVTec's test
    images are never among them). Row order is kept."""
    if not 0.0 <= anomalous_train_fraction <= 1.0:
        raise MetricadError(
            f"anomalous_train_fraction must be within [0, 1], got {anomalous_train_fraction}"
        )
    split = np.where(scan["mvtec_split"].to_numpy() == "train", "train", "test").astype(object)
    rng = np.random.default_rng(seed)
    anomalous = scan["label"].to_numpy() == 1
    defects = scan["defect"].to_numpy()
    # Sorted defect order: the draw for each type does not depend on the row order.
    for defect in sorted(set(defects[anomalous])):
        rows = np.flatnonzero(anomalous & (defects == defect))
        chosen = rng.permutation(len(rows))[: round(anomalous_train_fraction * len(rows))]
        split[rows[chosen]] = "train"
    good = np.flatnonzero(scan["mvtec_split"].to_numpy() == "train")
    held_out = rng.permutation(len(good))[: round(validation_fraction * len(good))]
    split[good[held_out]] = "validation"
    result = scan.copy()
    result["split"] = split.astype(str)
    return result


def split_warnings(manifest: pd.DataFrame, anomalous_train_fraction: float) -> list[str]:
    """What the split could not do as asked: defect types with too few images to put
    round(fraction * n) > 0 of them in training (they all stay in test), and a test split
    without a good image or without a defect image (its image AUROC is undefined)."""
    warnings = []
    anomalous = manifest[manifest["label"] == 1]
    if anomalous_train_fraction > 0 and len(anomalous):
        in_train = anomalous.groupby("defect")["split"].apply(lambda s: (s == "train").sum())
        counts = anomalous.groupby("defect").size()
        left = [f"{d} ({counts[d]})" for d in sorted(counts.index) if in_train[d] == 0]
        if left:
            warnings.append(
                f"split.anomalous_train_fraction={anomalous_train_fraction} puts no image of "
                f"{', '.join(left)} in training (too few images); they all stay in test"
            )
    test_labels = set(manifest.loc[manifest["split"] == "test", "label"])
    for label, what in ((0, "good"), (1, "defect")):
        if label not in test_labels:
            warnings.append(
                f"split: the test split has no {what} image; its image AUROC is undefined "
                "(null in metrics/)"
            )
    return warnings


def write_manifest(df: pd.DataFrame, path: str | Path) -> None:
    """Write the manifest CSV (MANIFEST_COLUMNS order, empty mask_path as an empty field)."""
    table = df[MANIFEST_COLUMNS].copy()
    table["mask_path"] = table["mask_path"].fillna("")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest written by write_manifest; text columns stay text ("" never NaN)."""
    path = Path(path)
    if not path.is_file():
        raise MetricadError(f"{path}: manifest file does not exist")
    text_columns = [c for c in MANIFEST_COLUMNS if c != "label"]
    try:
        table = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str), keep_default_na=False)
    except ValueError as error:  # pandas' parser and empty-file errors are ValueErrors
        raise MetricadError(f"{path}: not a readable manifest CSV ({error})") from None
    if list(table.columns) != MANIFEST_COLUMNS:
        raise MetricadError(
            f"{path}: manifest columns are {list(table.columns)}, expected {MANIFEST_COLUMNS}"
        )
    labels = pd.to_numeric(table["label"], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise MetricadError(f"{path}: manifest column label must hold only 0 and 1")
    table["label"] = labels.astype(int)
    return table


def synthetic_rows(count: int, split: str = SYNTHETIC) -> pd.DataFrame:
    """Manifest-like rows (path, label, defect, split) for the fixed sample of synthetic
    training anomalies, to sit beside real images."""
    return pd.DataFrame(
        {
            "path": [f"{SYNTHETIC}/{n:03d}" for n in range(count)],
            "label": 1,
            "defect": SYNTHETIC,
            "split": split,
        }
    )


def validation_rows(split: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The good images operating points are set on: the validation split, or, when
    split.validation_fraction leaves none, the good training images (with a warning)."""
    validation = np.asarray(split) == "validation"
    if validation.any():
        return validation, []
    good_train = (np.asarray(split) == "train") & (np.asarray(labels) == 0)
    return good_train, [
        "split.validation_fraction leaves no validation image: the operating points come "
        "from the good training images, which the scores have seen (expect more false "
        "positives)"
    ]
