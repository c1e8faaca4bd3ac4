"""How each photo is framed before it is resized (`resize.framing`), one framing per module:
`whole` (the photo as it is, the default) and, for an elongated object photographed at any
angle on a plain ground (a screw, a pin), `object_axis` (the object turned to lie along its
principal axis, its wide end left, centred) and `object_band` (the turned object's band only,
folded into a square: more of the network's pixels on the object). Masks are framed with
their images. The resize stage frames the training and test photos, predict a user's photo.
Numpy and PIL only. Adding a framing: one module here, its name in `Framing` (params.py)."""

from __future__ import annotations

import numpy as np

from metricad.data.framing.base import FRAMINGS
from metricad.data.images import Framer
from metricad.errors import MetricadError
from metricad.params import ResizeParams
from metricad.registry import import_entries

__all__ = ["FRAMINGS", "framed", "framer"]

import_entries(__name__, __path__)


def framed(
    image: np.ndarray, mask: np.ndarray | None, name: str, settings: object | None, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The uint8 HxWx3 `image` and its bool HxW `mask` (None: none) framed by the framing
    `name` with its settings (None: their defaults); `where` (a file, a photo) starts the
    one-line error of a photo the framing cannot frame."""
    try:
        return FRAMINGS.create(name, image, mask, settings=settings)
    except MetricadError as error:
        raise MetricadError(f"{where}: {error}") from None


def framer(resize: ResizeParams) -> Framer:
    """(image, mask, where) -> framed, with the framing and settings of the params section."""
    name, settings = resize.framing, FRAMINGS.settings_in(resize.framing, resize)
    return lambda image, mask, where: framed(image, mask, name, settings, where)
