"""`data.source: folder`: the user's own photos in plain folders under data.root:

    <data.root>/
      good/                 (data.folder.good) images of good parts, in any nested folders
      <defect>/             optional, one folder per defect type (its name is the defect)
      masks/<defect>/       (data.folder.masks) optional: <name>.png or <name>_mask.png per defect
                            image, mirroring the defect folder's nesting

No split is given: `split.test_fraction` of the good images is held out for test and
`split.validation_fraction` of the rest for the operating points (split.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metricad.data.images import IMAGE_EXTENSIONS
from metricad.data.manifest import DEFECT_FREE, SYNTHETIC, source_table
from metricad.data.sources import SOURCES
from metricad.data.sources.listing import (
    check_files,
    images_by_stem,
    is_image,
    subfolders,
    visible,
    warn_missing_masks,
)
from metricad.data.sources.mvtec import MASK_SUFFIX
from metricad.errors import MetricadError
from metricad.params import DataParams
from metricad.validation import folder_name


@dataclass(frozen=True)
class FolderSettings:
    """data.folder: the folder names under data.root."""

    good: str = folder_name("good")  # the folder of good images
    masks: str = folder_name("masks")  # the folder of masks, masks/<defect>/<name>.png


def _expected(data: DataParams) -> str:
    return (
        f"(folder layout expected: <data.root>/{data.folder.good}/ with images of good parts, "
        f"optional <data.root>/<defect>/ folders, optional "
        f"<data.root>/{data.folder.masks}/<defect>/ masks)"
    )


@SOURCES.register("folder", settings=FolderSettings, root="folder")
def folder_source(data: DataParams, workspace: Path) -> pd.DataFrame:
    root = Path(str(data.root))
    if not root.is_dir():
        raise MetricadError(f"data.root: folder {root} does not exist {_expected(data)}")
    for entry in visible(root):
        if is_image(entry):
            raise MetricadError(
                f"{entry}: image directly in data.root; put good images in "
                f"{root / data.folder.good}/ and defect images in <defect>/ folders"
            )
    good_dir = root / data.folder.good
    if not good_dir.is_dir():
        raise MetricadError(f"{good_dir}: folder of good images does not exist {_expected(data)}")
    folders = {DEFECT_FREE: good_dir}
    for folder in subfolders(root):
        if folder.name in (data.folder.good, data.folder.masks):
            continue
        if folder.name in (DEFECT_FREE, SYNTHETIC):
            raise MetricadError(
                f"{folder}: {folder.name!r} cannot name a defect type (data.folder.good is "
                f"{data.folder.good!r}); rename the folder"
            )
        folders[folder.name] = folder
    images: dict[str, dict[str, Path]] = {}
    for defect, folder in folders.items():
        images[defect] = images_by_stem(folder, nested=True)
        if not images[defect]:
            kind = "good" if defect == DEFECT_FREE else "defect"
            raise MetricadError(
                f"{folder}: {kind} folder has no images "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add some or remove it"
            )
    masks = _scan_masks(root / data.folder.masks, images)
    rows = [
        (path, f"{folders[defect].name}/{name}", int(defect != DEFECT_FREE), defect, "")
        for defect in sorted(images, key=lambda d: (d != DEFECT_FREE, d))
        for name, path in sorted(images[defect].items())
    ]
    check_files([row[0] for row in rows], masks)
    warn_missing_masks(
        root / data.folder.masks,
        [str(path) for path, _, label, *_ in rows if label and path not in masks] if masks else [],
    )
    return source_table(rows, masks)


def _scan_masks(masks_dir: Path, images: dict[str, dict[str, Path]]) -> dict[Path, Path]:
    """Each defect image's mask: masks/<defect>/<name>.png or <name>_mask.png."""
    masks: dict[Path, Path] = {}
    if not masks_dir.is_dir():
        return masks
    for mask_dir in subfolders(masks_dir):
        if mask_dir.name not in images or mask_dir.name == DEFECT_FREE:
            raise MetricadError(
                f"{mask_dir}: masks for a defect folder that does not exist "
                f"(defect folders: {', '.join(d for d in sorted(images) if d != DEFECT_FREE)})"
            )
        defect_images = images[mask_dir.name]
        for name, mask in images_by_stem(mask_dir, nested=True).items():
            image = defect_images.get(name) or defect_images.get(name.removesuffix(MASK_SUFFIX))
            if image is None:
                raise MetricadError(
                    f"{mask}: mask has no image {name.removesuffix(MASK_SUFFIX)}.* in "
                    f"{masks_dir.parent / mask_dir.name}; masks are named like their image "
                    f"(<name>.png or <name>{MASK_SUFFIX}.png)"
                )
            if image in masks:
                raise MetricadError(f"{mask}: second mask for {image} (first: {masks[image]})")
            masks[image] = mask
    return masks
