"""A copy of one real MVTec AD category with every object turned to lie along its principal
axis, its wide end left, centred: a screen of pose alignment for issue 31 (objects lie at any
angle; the flatten neck learns positions). Not part of the pipeline; run the survey on the copy:

    python scripts/aligned_copy.py ../shared/realdata/screw /tmp/aligned/screw
    python scripts/survey.py --category screw --root /tmp/aligned --out surveys/screens/aligned \\
        --settings real --seeds 0 --epochs 60

`--flat` also scales each photo so its background median is 190 and paints everything outside
the object (its dark pixels, opened, dilated by 4) that grey: lighting and background texture
gone. The object is what is darker than the background by 40 grey levels or more (screw, not a
bright object on a dark ground).

`--band` keeps only the turned object's band (72 px of a 256 px photo, about a screw's head),
scaled by 8/9 and folded: its left half above its right half, a square of half the photo's side.
At `resize.size` 128 the object keeps 1.8 times the pixels it has in the whole photo at 128.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

BACKGROUND = 190.0
CONTRAST = 40  # grey levels by which the object is darker than the background
BAND = 72 / 256  # the band's height, a share of the photo's side


def _largest(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    return labels == (np.argmax(sizes) + 1)


def pose(grey: np.ndarray) -> tuple[float, float, float, float, bool]:
    """(background grey, centre x, centre y, angle of the major axis in degrees, whether the
    wide end lies right) of the darker object on a photo's grey levels."""
    border = np.r_[grey[:8].ravel(), grey[-8:].ravel(), grey[:, :8].ravel(), grey[:, -8:].ravel()]
    background = float(np.median(border))
    darker = ndimage.binary_opening(grey < background - CONTRAST, iterations=1)
    ys, xs = np.nonzero(_largest(darker))
    cy, cx = ys.mean(), xs.mean()
    _, vectors = np.linalg.eigh(np.cov(np.stack([xs - cx, ys - cy])))
    major = vectors[:, 1]
    along = (xs - cx) * major[0] + (ys - cy) * major[1]
    across = np.abs(-(xs - cx) * major[1] + (ys - cy) * major[0])
    left = across[along < np.percentile(along, 15)].mean()
    right = across[along > np.percentile(along, 85)].mean()
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    return background, float(cx), float(cy), angle, bool(right > left)


def aligned(photo: Image.Image, flat: bool) -> Image.Image:
    grey = np.asarray(photo.convert("L"), dtype=np.float32)
    background, cx, cy, angle, flip = pose(grey)
    height, width = grey.shape
    fill = tuple(int(c) for c in np.median(np.asarray(photo)[:8].reshape(-1, 3), axis=0))
    turned = photo.rotate(
        angle,
        resample=Image.BICUBIC,
        center=(cx, cy),
        translate=(width / 2 - cx, height / 2 - cy),
        fillcolor=fill,
    )
    if flip:
        turned = turned.transpose(Image.FLIP_LEFT_RIGHT)
    if not flat:
        return turned
    grey = np.asarray(turned.convert("L"), dtype=np.float32)
    opened = ndimage.binary_opening(grey < background - CONTRAST)
    inside = _largest(ndimage.binary_dilation(opened, iterations=4))
    pixels = np.asarray(turned, dtype=np.float32) * (BACKGROUND / background)
    pixels[~inside] = BACKGROUND
    return Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8))


def folded_band(turned: Image.Image) -> Image.Image:
    """The centred object's band, scaled to fit, its left half above its right half."""
    side = turned.width // 2
    band_height = round(turned.height * BAND)
    top = (turned.height - band_height) // 2
    band = turned.crop((0, top, turned.width, top + band_height))
    band = band.resize((round(turned.width * side / (2 * band_height)), side // 2), Image.LANCZOS)
    fill = tuple(int(c) for c in np.median(np.asarray(band)[:2].reshape(-1, 3), axis=0))
    square = Image.new("RGB", (side, side), fill)
    half = band.width // 2
    offset = (side - half) // 2
    square.paste(band.crop((0, 0, half, band.height)), (offset, 0))
    square.paste(band.crop((half, 0, 2 * half, band.height)), (offset, side // 2))
    return square


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("category", type=Path, help="an MVTec AD category folder")
    parser.add_argument("out", type=Path, help="the copy's category folder")
    parser.add_argument("--flat", action="store_true", help="background one grey, lighting out")
    parser.add_argument("--band", action="store_true", help="the object's band only, folded")
    args = parser.parse_args()
    # The photos only: masks are not turned (pixel figures on the copy mean nothing).
    photos = sorted([*args.category.glob("train/*/*.png"), *args.category.glob("test/*/*.png")])
    for path in photos:
        target = args.out / path.relative_to(args.category)
        target.parent.mkdir(parents=True, exist_ok=True)
        turned = aligned(Image.open(path).convert("RGB"), args.flat)
        (folded_band(turned) if args.band else turned).save(target)
    print(f"{len(photos)} photos -> {args.out}")


if __name__ == "__main__":
    main()
