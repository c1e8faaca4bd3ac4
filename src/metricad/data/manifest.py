"""The manifest: one row per image, the table every stage after `prepare` reads.

Columns: path (the image file), name (unique within the manifest, a relative path without
suffix; `resize` writes <name>.png), label (0 good, 1 anomalous), defect ("good" or the defect
type), mask_path ("" without a mask), source_split (the split the data source assigns: "train",
"test", or "" where `split.*` decides) and split (train | validation | test, from split.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from metricad.errors import MetricadError
from metricad.files import atomic_path

DEFECT_FREE = "good"
# The split and defect name of the synthetic training anomalies wherever they sit beside real
# images (GradCAM's rows, the t-SNE maps).
SYNTHETIC = "synthetic"
SOURCE_COLUMNS = ["path", "name", "label", "defect", "mask_path", "source_split"]
MANIFEST_COLUMNS = [*SOURCE_COLUMNS, "split"]


def source_table(
    rows: Iterable[tuple[Path, str, int, str, str]], masks: Mapping[Path, Path]
) -> pd.DataFrame:
    """A data source's table (SOURCE_COLUMNS) from one (path, name, label, defect,
    source_split) tuple per image, each image's mask looked up in `masks`."""
    return pd.DataFrame(
        [
            {
                "path": path.as_posix(),
                "name": name,
                "label": label,
                "defect": defect,
                "mask_path": masks[path].as_posix() if path in masks else "",
                "source_split": source_split,
            }
            for path, name, label, defect, source_split in rows
        ],
        columns=SOURCE_COLUMNS,
    )


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
