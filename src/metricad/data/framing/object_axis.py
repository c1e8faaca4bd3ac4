"""`object_axis`: the object turned to lie along its principal axis, its wide end left, and
moved to the centre (a screw's head left, its tip right, whatever its angle in the photo), so
each part of the object comes to one place of the network's input. The object is the largest
blob darker than the photo's border by `contrast` grey levels (a dark part on a light ground).
`flat` also scales the photo so its ground is grey 190 and paints everything but the object
that grey: a line's lighting and the ground's texture are gone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from metricad.data.framing.base import FRAMINGS
from metricad.data.images import pil_mask, pil_photo
from metricad.errors import MetricadError
from metricad.validation import ranged

GROUND = 190.0  # the ground's grey after `flat`
BORDER = 8  # pixels of each edge that show the ground
MIN_PIXELS = 16  # an object smaller than this has no axis


@dataclass(frozen=True)
class ObjectSettings:
    """resize.object_axis: how the object is found, and whether the ground is flattened."""

    contrast: int = ranged(1, 254, default=40)  # grey levels darker than the border's median
    flat: bool = False


def _largest(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    return labels == (np.argmax(sizes) + 1)


def _border(grey: np.ndarray) -> np.ndarray:
    edges = [grey[:BORDER], grey[-BORDER:], grey[:, :BORDER], grey[:, -BORDER:]]
    return np.concatenate([edge.ravel() for edge in edges])


def _grey(photo: Image.Image) -> np.ndarray:
    """A photo's grey levels (float32), as PIL's "L" weighs its channels."""
    return np.asarray(photo.convert("L"), dtype=np.float32)


def _principal_axes(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The variances along the principal axes of the points (ascending) and the axes."""
    return np.linalg.eigh(np.cov(np.stack([xs, ys])))


def _darker(grey: np.ndarray, ground: float, contrast: int) -> np.ndarray:
    return ndimage.binary_opening(grey < ground - contrast, iterations=1)


def _object(grey: np.ndarray, contrast: int) -> tuple[float, np.ndarray, np.ndarray]:
    """(the ground's grey, the object's pixel rows and columns) on a photo's grey levels."""
    ground = float(np.median(_border(grey)))
    ys, xs = np.nonzero(_largest(_darker(grey, ground, contrast)))
    if len(xs) < MIN_PIXELS:
        raise MetricadError(
            f"no object darker than the photo's border (grey {ground:.0f}) by {contrast} grey "
            "levels to turn (resize.framing needs a dark object on a light ground; lower "
            "its contrast setting, or use resize.framing: whole)"
        )
    return ground, ys, xs


def elongation(image: np.ndarray, contrast: int) -> float | None:
    """How elongated the photo's dark object is: the spread of its pixels along the major
    axis over the spread across it (a disc 1, a screw about 4); None unless the photo shows
    one such object on a plain ground (a border whose middle half of grey levels spans less
    than half `contrast`, and one blob holding most of the darker pixels): a texture's dark
    spots or lines are no object to turn."""
    grey = _grey(pil_photo(image))
    border = _border(grey)
    if np.subtract(*np.percentile(border, [75, 25])) >= contrast / 2:
        return None
    darker = _darker(grey, float(np.median(border)), contrast)
    largest = _largest(darker)
    if largest.sum() < max(MIN_PIXELS, darker.sum() / 2):
        return None
    ys, xs = np.nonzero(largest)
    variances, _ = _principal_axes(xs.astype(np.float64), ys.astype(np.float64))
    return float(np.sqrt(variances[1] / max(variances[0], 1e-12)))


def _pose(grey: np.ndarray, contrast: int) -> tuple[float, float, float, float, bool]:
    """(the ground's grey, centre x, centre y, angle of the major axis in degrees, whether
    the wide end lies right) of the darker object on a photo's grey levels."""
    ground, ys, xs = _object(grey, contrast)
    cy, cx = ys.mean(), xs.mean()
    _, vectors = _principal_axes(xs - cx, ys - cy)
    major = vectors[:, 1]
    along = (xs - cx) * major[0] + (ys - cy) * major[1]
    across = np.abs(-(xs - cx) * major[1] + (ys - cy) * major[0])
    left = across[along < np.percentile(along, 15)].mean()
    right = across[along > np.percentile(along, 85)].mean()
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    return ground, float(cx), float(cy), angle, bool(right > left)


def _flattened(turned: Image.Image, ground: float, contrast: int) -> Image.Image:
    grey = _grey(turned)
    opened = ndimage.binary_opening(grey < ground - contrast)
    inside = _largest(ndimage.binary_dilation(opened, iterations=4))
    pixels = np.asarray(turned, dtype=np.float32) * (GROUND / ground)
    pixels[~inside] = GROUND
    return Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8))


def turned_object(
    image: np.ndarray, mask: np.ndarray | None, settings: ObjectSettings
) -> tuple[Image.Image, Image.Image | None]:
    """The photo and its mask (L, 0/255) turned, centred and (`flat`) flattened, as PIL images."""
    photo = pil_photo(image)
    grey = _grey(photo)
    ground, cx, cy, angle, flip = _pose(grey, settings.contrast)
    height, width = grey.shape
    move = {"center": (cx, cy), "translate": (width / 2 - cx, height / 2 - cy)}
    fill = tuple(int(c) for c in np.median(image[:BORDER].reshape(-1, 3), axis=0))
    turned = photo.rotate(angle, resample=Image.BICUBIC, fillcolor=fill, **move)
    turned_mask = None
    if mask is not None:
        turned_mask = pil_mask(mask).rotate(angle, resample=Image.NEAREST, fillcolor=0, **move)
    if flip:
        turned = turned.transpose(Image.FLIP_LEFT_RIGHT)
        if turned_mask is not None:
            turned_mask = turned_mask.transpose(Image.FLIP_LEFT_RIGHT)
    if settings.flat:
        turned = _flattened(turned, ground, settings.contrast)
    return turned, turned_mask


def as_arrays(image: Image.Image, mask: Image.Image | None) -> tuple[np.ndarray, np.ndarray | None]:
    return np.asarray(image, dtype=np.uint8).copy(), None if mask is None else (
        np.asarray(mask) > 127
    )


@FRAMINGS.register("object_axis", settings=ObjectSettings, one_pose=True)
def object_axis(
    image: np.ndarray, mask: np.ndarray | None, settings: ObjectSettings
) -> tuple[np.ndarray, np.ndarray | None]:
    return as_arrays(*turned_object(image, mask, settings))
