"""`object_band`: `object_axis`, then only the turned object's band (a share `band` of the
photo's height about its centre line), scaled to fit and folded: its left half above its right
half, in a square of half the photo's width. An elongated object then fills the square: at the
same resize.size it gets about twice the pixels it has in the whole photo (a screw's thread
and tip damage, a few pixels wide at 128 px, become visible), for the same compute."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from metricad.data.framing.base import FRAMINGS
from metricad.data.framing.object_axis import ObjectSettings, as_arrays, turned_object
from metricad.validation import ranged


@dataclass(frozen=True)
class BandSettings(ObjectSettings):
    """resize.object_band: object_axis's settings and the band's height."""

    band: float = ranged(0.05, 1.0, default=0.28125)  # a share of the photo's height


def _folded(image: Image.Image, band_share: float, resample: int) -> Image.Image:
    side = image.width // 2
    band_height = round(image.height * band_share)
    top = (image.height - band_height) // 2
    band = image.crop((0, top, image.width, top + band_height))
    band = band.resize((round(image.width * side / (2 * band_height)), side // 2), resample)
    # The square's ground: a photo's, the median colour of the band's first rows; a mask's, 0.
    fill = 0
    if image.mode == "RGB":
        fill = tuple(int(c) for c in np.median(np.asarray(band)[:2].reshape(-1, 3), axis=0))
    square = Image.new(image.mode, (side, side), fill)
    half = band.width // 2
    offset = (side - half) // 2
    square.paste(band.crop((0, 0, half, band.height)), (offset, 0))
    square.paste(band.crop((half, 0, 2 * half, band.height)), (offset, side // 2))
    return square


@FRAMINGS.register("object_band", settings=BandSettings, one_pose=True)
def object_band(
    image: np.ndarray, mask: np.ndarray | None, settings: BandSettings
) -> tuple[np.ndarray, np.ndarray | None]:
    turned, turned_mask = turned_object(image, mask, settings)
    folded = _folded(turned, settings.band, Image.LANCZOS)
    if turned_mask is None:
        return as_arrays(folded, None)
    return as_arrays(folded, _folded(turned_mask, settings.band, Image.NEAREST))
