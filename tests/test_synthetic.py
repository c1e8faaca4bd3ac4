"""The synthetic leather set: MVTec layout, masks, determinism, and visible, local defects."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from metricad.errors import MetricadError
from metricad.layout import scan_mvtec
from metricad.synthetic import (
    MARKER,
    SYNTHETIC_DEFECTS,
    generate_synthetic,
    render_sample,
)

DEFECTS = SYNTHETIC_DEFECTS["leather"]
SMALL = {"train_good": 3, "test_good": 2, **dict.fromkeys(DEFECTS, 2)}
SIZE = 64


def _generate(root: Path, **kwargs) -> dict[str, bytes]:
    """Generate a small set; return every visible file's bytes by its path under root."""
    arguments = {"image_size": SIZE, "counts": SMALL, "progress": False} | kwargs
    generate_synthetic(root, **arguments)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def test_defect_names():
    assert DEFECTS == ("color", "cut", "fold", "glue", "poke")


def test_layout_names_and_counts(tmp_path):
    files = _generate(tmp_path)
    expected = {f"leather/train/good/{i:03d}.png" for i in range(3)}
    expected |= {f"leather/test/good/{i:03d}.png" for i in range(2)}
    for defect in DEFECTS:
        expected |= {f"leather/test/{defect}/{i:03d}.png" for i in range(2)}
        expected |= {f"leather/ground_truth/{defect}/{i:03d}_mask.png" for i in range(2)}
    assert set(files) == expected
    # Nothing half-built is left beside the tree.
    assert [p.name for p in tmp_path.iterdir()] == ["leather"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scan = scan_mvtec(tmp_path, "leather")
    assert len(scan) == 3 + 2 + 2 * len(DEFECTS)
    assert (scan.loc[scan["label"] == 1, "mask_path"] != "").all()


def test_masks_are_binary_small_and_match_their_images(tmp_path):
    _generate(tmp_path)
    category_dir = tmp_path / "leather"
    for image_path in sorted((category_dir / "test").rglob("*.png")):
        image = Image.open(image_path)
        assert image.mode == "RGB" and image.size == (SIZE, SIZE)
    for mask_path in sorted((category_dir / "ground_truth").rglob("*.png")):
        mask = Image.open(mask_path)
        assert mask.mode == "L" and mask.size == (SIZE, SIZE)
        values = np.asarray(mask)
        assert set(np.unique(values)) == {0, 255}, mask_path
        assert 0 < (values > 0).mean() < 0.05, mask_path


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    first = _generate(tmp_path / "a")
    assert first == _generate(tmp_path / "b")
    other = _generate(tmp_path / "c", seed=1)
    assert all(other[name] != first[name] for name in first if name.endswith("000.png"))


def test_changing_one_count_keeps_the_other_images(tmp_path):
    first = _generate(tmp_path / "a")
    more_cuts = _generate(tmp_path / "b", counts=SMALL | {"cut": 3})
    assert set(more_cuts) - set(first) == {
        "leather/test/cut/002.png",
        "leather/ground_truth/cut/002_mask.png",
    }
    assert all(more_cuts[name] == first[name] for name in first)


@pytest.mark.parametrize("defect", DEFECTS)
def test_defects_alter_exactly_the_masked_pixels(defect):
    # At the default size, where the pipeline takes its images from.
    for index in range(2):
        sample = render_sample("leather", defect, seed=0, index=index, image_size=256)
        assert sample.image.shape == (256, 256, 3) and sample.mask.shape == (256, 256)
        change = np.abs(sample.image.astype(int) - sample.clean.astype(int)).max(axis=2)
        assert 0.001 < sample.mask.mean() < 0.05
        assert change[sample.mask].mean() > 15  # clearly visible inside
        assert change[~sample.mask].max() <= 3  # untouched (to rounding) outside


def test_good_samples_have_no_mask():
    sample = render_sample("leather", "good", seed=0, index=0, image_size=SIZE)
    assert sample.mask is None and np.array_equal(sample.image, sample.clean)


def test_replaces_its_own_tree_but_never_other_folders(tmp_path):
    _generate(tmp_path, counts=SMALL | {"train_good": 5})
    files = _generate(tmp_path)
    assert "leather/train/good/004.png" not in files

    real = tmp_path / "real"
    (real / "leather" / "train" / "good").mkdir(parents=True)
    (real / "leather" / "train" / "good" / "000.png").write_bytes(b"precious")
    with pytest.raises(MetricadError, match="refusing"):
        generate_synthetic(real, image_size=SIZE, counts=SMALL, progress=False)
    assert (real / "leather" / "train" / "good" / "000.png").read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"category": "carpet_x"}, "data.category.*leather"),
        ({"counts": {"scratch": 1}}, "scratch"),
        ({"counts": {"cut": -1}}, "cut"),
        ({"counts": {"cut": 1.5}}, "cut"),
        ({"seed": -1}, "seed"),
        ({"image_size": 8}, "image_size"),
    ],
)
def test_argument_errors(tmp_path, arguments, message):
    with pytest.raises(MetricadError, match=message):
        generate_synthetic(tmp_path, **({"progress": False} | arguments))
    assert not any(tmp_path.iterdir())
