"""A copy of one real MVTec AD category with every photo framed as `resize.framing` would frame
it (src/metricad/data/framing/): the screens of pose alignment for issue 31 ran on such
copies, before the framings were part of the pipeline. Run the survey on the copy:

    python scripts/aligned_copy.py ../shared/realdata/screw /tmp/aligned/screw
    python scripts/survey.py --category screw --root /tmp/aligned --out surveys/screens/aligned \\
        --settings real-map --seeds 0 --epochs 60

Default: `object_axis` (each screw turned to lie along its principal axis, wide end left,
centred). `--flat` also scales each photo so its ground is grey 190 and paints everything but
the object that grey; `--band` frames with `object_band` (the turned object's band only,
folded into a square). The photos only: masks are not copied.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from metricad.data.framing import framed
from metricad.data.framing.object_axis import ObjectSettings
from metricad.data.framing.object_band import BandSettings
from metricad.data.images import load_rgb, save_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("category", type=Path, help="an MVTec AD category folder")
    parser.add_argument("out", type=Path, help="the copy's category folder")
    parser.add_argument("--flat", action="store_true", help="ground one grey, lighting out")
    parser.add_argument("--band", action="store_true", help="the object's band only, folded")
    args = parser.parse_args()
    name = "object_band" if args.band else "object_axis"
    settings = (BandSettings if args.band else ObjectSettings)(flat=args.flat)
    photos = sorted([*args.category.glob("train/*/*.png"), *args.category.glob("test/*/*.png")])
    for path in photos:
        target = args.out / path.relative_to(args.category)
        target.parent.mkdir(parents=True, exist_ok=True)
        save_png(framed(load_rgb(path), None, name, settings, str(path))[0], target)
    print(f"{len(photos)} photos -> {args.out}")


if __name__ == "__main__":
    main()
