"""Image and mask loading in every PIL mode, broken files, resizing, PNG writing, resize_dataset."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import TREE_COUNTS
from PIL import Image, ImageFile

from metricad.data.images import (
    check_image,
    load_mask,
    load_rgb,
    resize_dataset,
    resize_mask,
    resize_rgb,
    save_png,
)
from metricad.data.sources.mvtec import scan_mvtec
from metricad.data.split import split_manifest
from metricad.errors import MetricadError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (12, 10), dtype=np.uint8)


def _save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def test_load_rgb_rgb_and_grayscale(tmp_path):
    assert np.array_equal(load_rgb(_save(Image.fromarray(RGB), tmp_path / "rgb.png")), RGB)
    gray = load_rgb(_save(Image.fromarray(GRAY), tmp_path / "l.png"))
    assert gray.dtype == np.uint8 and gray.shape == (12, 10, 3)
    assert all(np.array_equal(gray[..., c], GRAY) for c in range(3))


def test_load_rgb_16_bit_scales_to_8_bit(tmp_path):
    wide = GRAY.astype(np.uint16) * 257  # 8-bit values stretched to the full 16-bit range
    wide[0, 0] = 65535
    loaded = load_rgb(_save(Image.fromarray(wide), tmp_path / "i16.png"))
    assert Image.open(tmp_path / "i16.png").mode == "I;16"
    assert loaded.dtype == np.uint8 and loaded.shape == (12, 10, 3)
    expected = GRAY.copy()
    expected[0, 0] = 255
    assert np.array_equal(loaded[..., 1], expected)


def test_load_rgb_palette_rgba_and_la(tmp_path):
    palette = Image.fromarray(RGB).quantize(colors=16)
    palette.info["transparency"] = 0
    expected = np.asarray(palette.convert("RGB"))
    assert np.array_equal(load_rgb(_save(palette, tmp_path / "p.png")), expected)

    alpha = np.dstack([RGB, np.full((12, 10), 7, np.uint8)])
    assert np.array_equal(load_rgb(_save(Image.fromarray(alpha), tmp_path / "rgba.png")), RGB)

    la = Image.fromarray(np.dstack([GRAY, GRAY]), "LA")
    assert np.array_equal(load_rgb(_save(la, tmp_path / "la.png"))[..., 0], GRAY)


@pytest.mark.parametrize("value", [1, 255])
def test_load_mask_any_nonzero_is_defect(tmp_path, value):
    raw = np.zeros((8, 9), np.uint8)
    raw[2:5, 3:7] = value
    mask = load_mask(_save(Image.fromarray(raw), tmp_path / "m.png"))
    assert mask.dtype == bool and np.array_equal(mask, raw > 0)


@pytest.mark.parametrize("mode", ["1", "P", "RGB"])
def test_load_mask_other_modes(tmp_path, mode):
    raw = np.zeros((8, 9), np.uint8)
    raw[1:3, 1:8] = 255
    saved = _save(Image.fromarray(raw).convert(mode), tmp_path / f"m_{mode}.png")
    assert np.array_equal(load_mask(saved), raw > 0)


def _truncated_png(path: Path) -> Path:
    data = _png_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("loader", [load_rgb, load_mask])
@pytest.mark.parametrize("broken", ["zero-byte", "truncated", "text", "missing"])
def test_broken_files_raise_metricad_error_naming_the_file(tmp_path, loader, broken):
    path = tmp_path / f"{broken}.png"
    if broken == "zero-byte":
        path.write_bytes(b"")
    elif broken == "truncated":
        _truncated_png(path)
    elif broken == "text":
        path.write_text("not an image\n")
    with pytest.raises(MetricadError, match=re.escape(str(path))):
        loader(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_resize_rgb_shape_and_determinism():
    image = RNG.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    for size in (16, 64):  # shrinking (box) and enlarging (bilinear)
        resized = resize_rgb(image, size)
        assert resized.shape == (size, size, 3) and resized.dtype == np.uint8
        assert np.array_equal(resized, resize_rgb(image, size))
    flat = np.full((50, 50, 3), 93, np.uint8)
    assert np.all(resize_rgb(flat, 17) == 93)


def test_resize_mask_stays_binary():
    mask = RNG.random((50, 41)) > 0.7
    for size in (13, 96):
        resized = resize_mask(mask, size)
        assert resized.dtype == bool and resized.shape == (size, size)
    assert not resize_mask(np.zeros((9, 9), bool), 5).any()
    assert resize_mask(np.ones((9, 9), bool), 5).all()


def test_resize_rejects_non_positive_size():
    with pytest.raises(MetricadError, match="positive"):
        resize_rgb(RGB, 0)


def test_save_png_is_deterministic_and_atomic(tmp_path):
    save_png(RGB, tmp_path / "a.png")
    save_png(RGB, tmp_path / "sub" / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "sub" / "b.png").read_bytes()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), RGB)

    mask = GRAY > 128
    save_png(mask, tmp_path / "mask.png")
    saved = Image.open(tmp_path / "mask.png")
    assert saved.mode == "L"
    assert set(np.unique(np.asarray(saved))) <= {0, 255}
    assert np.array_equal(np.asarray(saved) > 0, mask)
    # No temporary files are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "mask.png", "sub"]


def test_resize_dataset_mirrors_layout_with_relative_paths(tmp_path, monkeypatch, make_mvtec_tree):
    monkeypatch.chdir(tmp_path)
    make_mvtec_tree("data", size=40, mode="L")
    manifest = split_manifest(scan_mvtec(Path("data"), "leather"), 0.5, seed=0)
    resized = resize_dataset(manifest, 24, Path("resized"), progress=False)

    assert len(resized) == sum(TREE_COUNTS.values())
    assert list(resized.columns) == list(manifest.columns)
    unchanged = ["label", "defect", "source_split", "name", "split"]
    assert resized[unchanged].equals(manifest[unchanged])
    for row in resized.itertuples():
        stem = Path(row.path).stem
        assert row.path == f"resized/{row.source_split}/{row.defect}/{stem}.png"
        assert load_rgb(row.path).shape == (24, 24, 3)
        if row.label:
            assert row.mask_path == f"resized/ground_truth/{row.name}_mask.png"
            assert set(np.unique(np.asarray(Image.open(row.mask_path)))) <= {0, 255}
            assert load_mask(row.mask_path).any()
        else:
            assert row.mask_path == ""


def test_resize_dataset_rejects_mask_of_other_size(tmp_path, make_mvtec_tree):
    # scan_mvtec refuses such a mask already (tests/test_mvtec_source.py); resize checks again for
    # a manifest written by hand or by an older version.
    category_dir = make_mvtec_tree(tmp_path, counts={"train_good": 1, "cut": 1})
    manifest = scan_mvtec(tmp_path, "leather")
    mask_path = category_dir / "ground_truth" / "cut" / "000_mask.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask_path)
    with pytest.raises(MetricadError, match="000_mask.png.*test/cut/000.png"):
        resize_dataset(manifest, 16, tmp_path / "out", progress=False)


def test_non_square_images_are_stretched_not_cropped():
    # Left third black, rest white: a centre crop of the 30x90 image would lose the black.
    image = np.full((30, 90, 3), 255, np.uint8)
    image[:, :30] = 0
    resized = resize_rgb(image, 12)
    assert resized.shape == (12, 12, 3)
    assert np.all(resized[:, :4] == 0) and np.all(resized[:, 4:] == 255)
    mask = np.zeros((30, 90), bool)
    mask[:, :30] = True
    assert np.array_equal(resize_mask(mask, 12)[:, :, None].repeat(3, 2), resized == 0)


def test_resize_dataset_keeps_non_square_masks_aligned(tmp_path, make_mvtec_tree):
    make_mvtec_tree(tmp_path, size=48, width=80, counts={"train_good": 1, "cut": 3})
    manifest = scan_mvtec(tmp_path, "leather")
    resized = resize_dataset(manifest, 32, tmp_path / "out", progress=False)
    for row in resized[resized["label"] == 1].itertuples():
        image, mask = load_rgb(row.path)[..., 0], load_mask(row.mask_path)
        assert image.shape == mask.shape == (32, 32)
        # The bright defect square lands where its mask does.
        assert image[mask].mean() > 200 > image[~mask].mean()


def test_zero_one_masks_survive_resize_dataset(tmp_path, make_mvtec_tree):
    make_mvtec_tree(tmp_path, mask_value=1, counts={"train_good": 1, "cut": 2})
    resized = resize_dataset(scan_mvtec(tmp_path, "leather"), 32, tmp_path / "out", False)
    for mask_path in resized.loc[resized["label"] == 1, "mask_path"]:
        assert set(np.unique(np.asarray(Image.open(mask_path)))) == {0, 255}


@pytest.mark.parametrize("mode", ["I", "F", "CMYK", "YCbCr", "LAB"])
def test_tiff_modes_load(tmp_path, mode):
    path = tmp_path / f"{mode}.tif"
    Image.fromarray(RGB).convert("L").convert(mode).save(path)
    assert load_rgb(path).shape == (12, 10, 3)
    assert load_mask(path).shape == (12, 10)


def test_other_formats_are_never_handed_to_their_plugins(tmp_path):
    # PIL would render PostScript with Ghostscript, an external program, whatever the name.
    eps = tmp_path / "000.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    gif = tmp_path / "001.png"
    Image.fromarray(GRAY).save(gif, format="GIF")
    for path in (eps, gif):
        for reader in (load_rgb, load_mask, check_image):
            with pytest.raises(MetricadError, match=re.escape(f"{path}: not an image")):
                reader(path)


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_check_image_returns_width_and_height(tmp_path):
    path = _save(Image.fromarray(RGB), tmp_path / "ok.png")
    assert check_image(path) == (10, 12)
    jpeg = _save(Image.fromarray(RGB), tmp_path / "ok.jpg")
    assert check_image(jpeg) == (10, 12)


@pytest.mark.parametrize("keep", [8, 30, 100, 0.5, -13, -12, -5])
def test_check_image_catches_any_truncation(tmp_path, keep):
    data = _png_bytes()
    # Even a cut into the end chunk (-12, -5), which load() would accept. Only a cut into the
    # end chunk's last 4 bytes (its checksum) passes, and then every pixel is there.
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "cut.png"
    path.write_bytes(data[:cut])
    with pytest.raises(MetricadError, match=re.escape(str(path))):
        check_image(path)


def test_check_image_catches_a_flipped_byte(tmp_path):
    data = bytearray(_png_bytes())
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    with pytest.raises(MetricadError, match=f"{re.escape(str(path))}: not a readable image"):
        check_image(path)


def test_truncated_jpeg_is_caught_by_check_image(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(MetricadError, match=re.escape(str(path))):
        check_image(path)
