"""`data.source: synthetic`: the generated demo set (data.category's look), written in MVTec
AD's layout into the workspace and read back as an MVTec copy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from metricad.data import demo
from metricad.data.sources import SOURCES
from metricad.data.sources.mvtec import scan_mvtec
from metricad.params import DataParams


@SOURCES.register("synthetic")
def synthetic_source(data: DataParams, workspace: Path) -> pd.DataFrame:
    root = workspace / "synthetic"
    demo.generate(root, data.category, data.synthetic.seed, data.synthetic.image_size)
    return scan_mvtec(root, data.category)
