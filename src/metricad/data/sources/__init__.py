"""Data sources: each turns what `data.*` points at into the neutral source table
(manifest.SOURCE_COLUMNS): the generated demo, an MVTec AD copy, a plain folder, a CSV list.

A source is a function `(data params, workspace folder) -> table`, registered under its
`data.source` name by its own module in this package; the workspace is the folder `prepare`
owns (the demo is generated there). Adding one: docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from metricad.params import DataParams
from metricad.registry import Registry, import_entries

Source = Callable[[DataParams, Path], pd.DataFrame]
SOURCES: Registry[Source] = Registry("data source", "data.source")

import_entries(__name__, __path__)
