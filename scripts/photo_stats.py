"""How the photos of each folder of an MVTec AD category differ, before any network: lighting
drift between training and test photos shows here.

    python scripts/photo_stats.py ../shared/realdata/screw

Per folder (train/good, test/<kind>): the number of photos and, as the median over its photos,
the median grey level, the grey-level sd of the bright background (pixels above
`--background`), and the number of dark pixels (below `--dark`: the object, on a light
background). Grey: PIL's "L" conversion of the files as they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def photo_figures(path: Path, background: int, dark: int) -> tuple[float, float, int]:
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return float(np.median(grey)), float(grey[grey > background].std()), int((grey < dark).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("category", type=Path, help="a category folder (train/, test/)")
    parser.add_argument("--background", type=int, default=150, help="grey level above: background")
    parser.add_argument("--dark", type=int, default=120, help="grey level below: dark pixels")
    args = parser.parse_args()
    folders = [args.category / "train" / "good"]
    folders += sorted(p for p in (args.category / "test").iterdir() if p.is_dir())
    print("folder            photos  median grey  background sd  dark pixels")
    for folder in folders:
        figures = np.array(
            [photo_figures(p, args.background, args.dark) for p in sorted(folder.glob("*.png"))]
        )
        if len(figures) == 0:
            continue
        grey, spread, count = np.median(figures, axis=0)
        name = folder.relative_to(args.category).as_posix()
        print(f"{name:16s}  {len(figures):6d}  {grey:11.1f}  {spread:13.1f}  {count:11.0f}")


if __name__ == "__main__":
    main()
