"""Data sources: each turns what `data.*` points at into the neutral source table
(manifest.SOURCE_COLUMNS): the generated demo, an MVTec AD copy, a plain folder, a CSV list.

A source is a function `(data params, workspace folder) -> table`, registered under its
`data.source` name by its own module in this package with what it reads at `data.root` (the
`root` trait: "folder", "CSV file", or none for the generated demo); the workspace is the
folder `prepare` owns (the demo is generated there). Adding one: docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from metricad.errors import MetricadError
from metricad.params import DataParams
from metricad.registry import Registry, import_entries
from metricad.validation import quoted_path

Source = Callable[[DataParams, Path], pd.DataFrame]
SOURCES: Registry[Source] = Registry("data source", "data.source")

import_entries(__name__, __path__)


def source_root(data: DataParams) -> Path | None:
    """`data.root`, checked against what the chosen source reads there (its `root` trait);
    None for a source that reads nothing (the generated demo)."""
    kind = SOURCES.trait(data.source, "root")
    if kind is None:
        return None
    if not data.root:
        raise MetricadError(f"params: data.root must be set when data.source is {data.source!r}")
    root = Path(data.root)
    if not (root.is_dir() if kind == "folder" else root.is_file()):
        raise MetricadError(f"params: data.root: {kind} {quoted_path(data.root)} does not exist")
    return root
