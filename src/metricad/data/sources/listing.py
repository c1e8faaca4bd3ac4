"""What the folder-based sources share: listing image files, checking every image and mask
before a manifest is written, and the one warning about defect images without a mask."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from metricad.data.images import IMAGE_EXTENSIONS, check_image
from metricad.errors import MetricadError

# How many missing-mask images the warning names before it only counts.
_WARN_LISTED = 10


def visible(folder: Path) -> list[Path]:
    """Entries of `folder` without hidden ones (.DS_Store, editors' and our own temp files)."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as error:  # permissions, or a folder removed while scanning
        raise MetricadError(f"{folder}: cannot list folder ({error.strerror})") from None


def subfolders(folder: Path) -> list[Path]:
    return [p for p in visible(folder) if p.is_dir()]


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def images_by_stem(folder: Path, nested: bool = False) -> dict[str, Path]:
    """Image files of `folder` (and, when `nested`, of its visible subfolders) by their path
    relative to `folder` without suffix; two images with one such name would be ambiguous."""
    found: dict[str, Path] = {}
    for entry in visible(folder):
        if nested and entry.is_dir():
            for name, path in images_by_stem(entry, nested=True).items():
                found[f"{entry.name}/{name}"] = path
            continue
        if not is_image(entry):
            continue
        if entry.stem in found:
            raise MetricadError(
                f"{folder}: two images share the name {entry.stem!r} "
                f"({found[entry.stem].name}, {entry.name})"
            )
        found[entry.stem] = entry
    return found


def check_files(images: Iterable[Path], masks: dict[Path, Path]) -> None:
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


def warn_missing_masks(where: Path, missing: list[str]) -> None:
    """One warning for all defect images without a mask (they are kept, unlocalised)."""
    if not missing:
        return
    listed = ", ".join(missing[:_WARN_LISTED])
    more = f" and {len(missing) - _WARN_LISTED} more" if len(missing) > _WARN_LISTED else ""
    warnings.warn(
        f"{where}: no mask for {len(missing)} defect image(s): {listed}{more}", stacklevel=3
    )
