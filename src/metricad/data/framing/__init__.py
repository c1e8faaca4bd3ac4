"""How each photo is framed before it is resized (`resize.framing`), one framing per module:
`whole` (the photo as it is, the default) and, for an elongated object photographed at any
angle on a plain ground (a screw, a pin), `object_axis` (the object turned to lie along its
principal axis, its wide end left, centred) and `object_band` (the turned object's band only,
folded into a square: more of the network's pixels on the object). Masks are framed with
their images. The resize stage frames the training and test photos, predict a user's photo.
`auto` is no framing of its own: the resize stage chooses one for the whole data set from its
good training photos (`chosen_framing`) and records it, so predict frames alike. Numpy and PIL
only. Adding a framing: one module here, its name in `Framing` (params.py); one that turns
every object to one pose registers `one_pose=True` (train.augment: auto then skips the flips
and quarter turns that would undo it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from metricad.data.framing.base import FRAMINGS
from metricad.data.framing.object_axis import elongation
from metricad.data.images import Framer
from metricad.errors import MetricadError
from metricad.files import read_json
from metricad.params import Params, ResizeParams
from metricad.paths import RESIZED_FRAMING
from metricad.registry import import_entries

__all__ = [
    "AUTO",
    "FRAMINGS",
    "chosen_framing",
    "framed",
    "framer",
    "one_pose",
    "recorded_framing",
    "resized_side",
    "resolved",
    "training_augments",
    "training_crop",
]

import_entries(__name__, __path__)

AUTO = "auto"
# `auto` bands an object whose median elongation reaches this: MVTec AD's screws measure 3.4 to
# 5.0 (median 4.3 over the 320 good training photos of ../shared/realdata), its bottles 1.0.
ELONGATED = 2.0


def chosen_framing(photos: Iterable[np.ndarray], contrast: int) -> tuple[str, str]:
    """The framing `auto` stands for on these good training photos, and why: `object_band`
    when each shows one dark object on a plain light ground (`contrast`: object_band's
    setting; object_axis.elongation) and their median elongation is ELONGATED or more (a part
    lying at any angle: one pose gives each of its parts one place), else `whole` (textures,
    round or upright objects, dark grounds)."""
    ratios = []
    for photo in photos:
        ratio = elongation(photo, contrast)
        if ratio is None:
            return "whole", "not every good training photo shows one dark object on a plain ground"
        ratios.append(ratio)
    if not ratios:
        return "whole", "no good training photo"
    median = float(np.median(ratios))
    if median >= ELONGATED:
        return "object_band", f"an elongated object (median elongation {median:.2f})"
    return "whole", f"an object that is not elongated (median elongation {median:.2f})"


def resolved(resize: ResizeParams, photos: Iterable[np.ndarray]) -> tuple[ResizeParams, str]:
    """The resize section with `auto` replaced by the chosen framing, and why."""
    if resize.framing != AUTO:
        return resize, "set in params"
    name, why = chosen_framing(photos, resize.object_band.contrast)
    return replace(resize, framing=name), why


def recorded_framing() -> str:
    """The framing the resize stage used (its data/resized/framing.json: `auto`'s choice)."""
    return read_json(RESIZED_FRAMING)["framing"]


def one_pose(params: Params, framing: str | None = None) -> bool:
    """Whether the framing turns every object to one pose (`framing`: the resize stage's
    choice, None: resize.framing)."""
    return bool(FRAMINGS.trait(framing or params.resize.framing, "one_pose"))


def training_crop(params: Params, framing: str | None = None) -> int:
    """The side of training's random squares (train.crop): 0 after a framing to one pose,
    where a random square would move each part of the object (resized_side takes its side)."""
    return 0 if one_pose(params, framing) else params.train.crop


def resized_side(params: Params, framing: str | None = None) -> int:
    """The side every stage sees: resize.size, or train.crop's after a framing to one pose
    (the whole photo at the crop's side: the compute the crop was chosen for)."""
    crop = params.train.crop
    return crop if crop and one_pose(params, framing) else params.resize.size


def training_augments(params: Params, framing: str | None = None) -> bool:
    """Whether training flips and turns its images: train.augment, auto following the framing
    (`framing`: the resize stage's choice, None: resize.framing): not after one that turns
    every object to one pose."""
    augment = params.train.augment
    if augment == AUTO:
        return not one_pose(params, framing)
    return bool(augment)


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
