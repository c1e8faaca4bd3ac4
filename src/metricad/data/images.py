"""Image and mask I/O: robust loading of any PIL mode, deterministic resizing and PNG writing,
and resizing a whole manifest into a folder of same-size PNGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from metricad.errors import MetricadError
from metricad.files import atomic_path

# MVTec ships PNG; the others let users bring their own photos. The PIL plugins for the formats
# IMAGE_EXTENSIONS stands for; no other PIL plugin is ever tried.
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "TIFF")
# What to do about a broken file, appended to each such error.
_FIX = "replace it with a good copy or remove it"
# Modes whose samples are 16 bits (PNG 16-bit grayscale opens as I;16; TIFF may give I).
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def _open(path: str | Path) -> Image.Image:
    """Open an image of an allowed format, lazily (header only); failures become MetricadError."""
    try:
        # Only the formats IMAGE_EXTENSIONS stands for: PIL would otherwise pick a plugin by
        # content, and an EPS file renamed to .png would be rendered by Ghostscript.
        return Image.open(path, formats=ALLOWED_FORMATS)
    except FileNotFoundError:
        raise MetricadError(
            f"{path}: file does not exist (moved or deleted since `prepare` listed it? "
            "run `dvc repro` again)"
        ) from None
    except UnidentifiedImageError:
        raise MetricadError(
            f"{path}: not an image (empty, or not {'/'.join(ALLOWED_FORMATS)}); {_FIX}"
        ) from None
    except Exception as error:  # PIL's plugins raise many types for malformed headers
        raise MetricadError(f"{path}: not a readable image ({_reason(error)}); {_FIX}") from None


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _decode(path: str | Path) -> Image.Image:
    """Open and fully decode an image, turning every decoding failure into a MetricadError."""
    image = _open(path)
    try:
        with image:
            # load() inside the try: a truncated PNG only fails when its pixels are decoded.
            image.load()
            return image
    except Exception as error:  # zlib, struct, OSError, SyntaxError...: all mean "broken file"
        raise MetricadError(f"{path}: not a readable image ({_reason(error)}); {_FIX}") from None


def check_image(path: str | Path) -> tuple[int, int]:
    """Check that `path` is a complete, readable image without decoding it; return (width, height).

    For PNG (all of MVTec AD) PIL's verify() walks every chunk and checks its CRC: it catches
    truncation anywhere (even a missing end chunk; only the end chunk's own 4-byte checksum
    goes unchecked, and then every pixel is there) and corrupted bytes, at about 2 ms for a
    1024x1024 image, where decoding takes 45 ms. Other formats have no such check, so they are
    decoded. A PNG whose compressed stream is corrupt but whose CRCs match passes here and
    fails, naming the file, when `resize` decodes it.
    """
    image = _open(path)
    try:
        with image:
            size = image.size
            if image.format == "PNG":
                image.verify()
            else:
                image.load()
    except Exception as error:  # as in _decode: every failure here means a broken file
        raise MetricadError(f"{path}: not a readable image ({_reason(error)}); {_FIX}") from None
    return size


def _wide_to_uint8(image: Image.Image) -> np.ndarray:
    """Scale 16-bit samples to 8 bit (65535 -> 255, rounded), which PIL's convert would clip."""
    samples = np.asarray(image, dtype=np.float64)
    return np.round(np.clip(samples, 0, 65535) / 257.0).astype(np.uint8)


def load_rgb(path: str | Path) -> np.ndarray:
    """Load any image as uint8 HxWx3 RGB (alpha dropped, grayscale and 16-bit scaled).

    The size is kept as stored: a non-square image stays non-square until `resize_rgb`.
    """
    image = _decode(path)
    try:
        if image.mode in _WIDE_MODES:
            gray = _wide_to_uint8(image)
            return np.repeat(gray[:, :, None], 3, axis=2)
        if image.mode in ("P", "PA"):
            # Through RGBA so PIL resolves palette transparency instead of warning about it.
            image = image.convert("RGBA")
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except ValueError as error:  # a mode PIL cannot convert to RGB
        raise MetricadError(
            f"{path}: image mode {image.mode} is not supported ({_reason(error)})"
        ) from None


def load_mask(path: str | Path) -> np.ndarray:
    """Load a ground-truth mask as bool HxW: any nonzero pixel (0/1, 0/255, any mode) is defect."""
    image = _decode(path)
    try:
        if image.mode in _WIDE_MODES or image.mode in ("1", "L", "F"):
            return np.asarray(image) != 0
        if image.mode in ("P", "PA"):
            # Judge palette masks by their colours, not by their palette indices.
            image = image.convert("RGBA")
        return np.asarray(image.convert("RGB")).any(axis=2)
    except ValueError as error:
        raise MetricadError(
            f"{path}: image mode {image.mode} is not supported ({_reason(error)})"
        ) from None


def _check_size(size: int) -> None:
    if size < 1:
        raise MetricadError(f"image size must be a positive integer, got {size}")


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 HxWx3 to size x size: box (area) filter when shrinking, bilinear otherwise.

    A non-square image is stretched to the square, not cropped, as MVTec AD pipelines do: a
    crop would cut defects (and their masks) at the border out of the data. `resize_mask`
    stretches the same way, so masks stay aligned with their images.
    """
    _check_size(size)
    height, width = image.shape[:2]
    # Box only when both sides shrink; a side that grows needs interpolation.
    shrinking = size <= height and size <= width
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    resized = pil_photo(image).resize((size, size), resample)
    return np.asarray(resized, dtype=np.uint8).copy()


def pil_photo(image: np.ndarray) -> Image.Image:
    """A uint8 HxWx3 array as a PIL image (RGB)."""
    return Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))


def pil_mask(mask: np.ndarray) -> Image.Image:
    """A bool HxW mask as a PIL image (L, 0 / 255)."""
    return Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Resize a bool HxW mask to size x size with nearest neighbour, so it stays strictly binary."""
    _check_size(size)
    return np.asarray(pil_mask(mask).resize((size, size), Image.Resampling.NEAREST)) > 127


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write uint8 RGB / L, or a bool mask as 0/255 L, atomically; equal arrays give equal bytes."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)
    ):
        raise ValueError(
            f"save_png needs uint8 HxW / HxWx3 or bool HxW, got {array.dtype} {array.shape}"
        )
    image = Image.fromarray(np.ascontiguousarray(array))
    with atomic_path(path) as tmp:
        # The temporary name ends in .tmp, so the format must be named.
        image.save(tmp, format="PNG")


# (image, mask or None, the file it came from) -> the framed image and mask
Framer = Callable[[np.ndarray, np.ndarray | None, str], tuple[np.ndarray, np.ndarray | None]]


def resize_dataset(
    manifest: pd.DataFrame,
    size: int,
    out_dir: str | Path,
    progress: bool = True,
    frame: Framer | None = None,
) -> pd.DataFrame:
    """Frame (`frame`: (image, mask, file) -> the framed image and mask; data/framing/) and
    resize every manifest image (and mask, framed alike) into `out_dir`.

    Images go to out_dir/<name>.png, masks to out_dir/ground_truth/<name>_mask.png (the
    manifest's `name` is unique); non-square images are stretched to the square (see
    `resize_rgb`). A mask whose size differs from its image's is an error naming both files.
    Returns a copy of the manifest whose path/mask_path name the new files (posix strings,
    relative if out_dir was relative).
    """
    _check_size(size)
    out_dir = Path(out_dir)
    resized = manifest.copy()
    new_paths: list[str] = []
    new_masks: list[str] = []
    rows = manifest[["path", "mask_path", "name"]].itertuples(index=False)
    for path, mask_path, name in tqdm(
        rows, total=len(manifest), desc="resize", disable=not progress
    ):
        image = load_rgb(path)
        mask = load_mask(mask_path) if mask_path else None
        if mask is not None and mask.shape != image.shape[:2]:
            raise MetricadError(
                f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{path} is {image.shape[1]}x{image.shape[0]}"
            )
        if frame is not None:
            image, mask = frame(image, mask, str(path))
        target = out_dir / f"{name}.png"
        save_png(resize_rgb(image, size), target)
        new_paths.append(target.as_posix())
        if mask is None:
            new_masks.append("")
            continue
        mask_target = out_dir / "ground_truth" / f"{name}_mask.png"
        save_png(resize_mask(mask, size), mask_target)
        new_masks.append(mask_target.as_posix())
    resized["path"] = new_paths
    resized["mask_path"] = new_masks
    return resized
