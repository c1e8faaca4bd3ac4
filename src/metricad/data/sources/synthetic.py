"""`data.source: synthetic`: the generated demo set (data.category's look), written in MVTec
AD's layout into the workspace and read back as an MVTec copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metricad.data import demo
from metricad.data.sources import SOURCES
from metricad.data.sources.mvtec import scan_mvtec
from metricad.params import SEED_MAX, DataParams
from metricad.validation import ranged


@dataclass(frozen=True)
class SyntheticSettings:
    """data.synthetic: the generated demo set."""

    seed: int = ranged(0, SEED_MAX, default=0)
    image_size: int = ranged(32, 2048, default=256)
    # The defects' size, times their default (a share of the image): larger defects stay
    # visible in smaller resized images.
    defect_scale: float = ranged(0.25, 4.0, default=1.5)


@SOURCES.register("synthetic", settings=SyntheticSettings)
def synthetic_source(data: DataParams, workspace: Path) -> pd.DataFrame:
    root = workspace / "synthetic"
    settings = data.synthetic
    demo.generate(
        root,
        data.category,
        settings.seed,
        settings.image_size,
        defect_scale=settings.defect_scale,
    )
    return scan_mvtec(root, data.category)
