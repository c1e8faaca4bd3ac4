"""Shared test helpers: a tiny image tree in MVTec AD's exact layout.

Use it as a fixture (`def test_x(tmp_path, make_mvtec_tree): make_mvtec_tree(tmp_path)`) or
import it (`from conftest import make_mvtec_tree`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LEATHER_DEFECTS = ("color", "cut", "fold", "glue", "poke")
TREE_COUNTS = {"train_good": 4, "test_good": 2, **dict.fromkeys(LEATHER_DEFECTS, 2)}
# Count keys that are not defect names, and the (split, folder) they fill.
_FOLDERS = {"train_good": ("train", "good"), "test_good": ("test", "good")}


def make_mvtec_tree(
    root: str | Path,
    category: str = "leather",
    size: int = 64,
    counts: dict[str, int] | None = None,
    mode: str = "RGB",
) -> Path:
    """Write root/category/{train/good, test/<kind>, ground_truth/<defect>} and return the
    category folder.

    `counts` maps "train_good", "test_good" and defect names to numbers of images (default
    TREE_COUNTS). Images are grey noise saved in PIL `mode`; a defect image has a bright square
    exactly where its 0/255 mask (<name>_mask.png) is set. Deterministic.
    """
    category_dir = Path(root) / category
    for kind_index, (key, count) in enumerate((counts or TREE_COUNTS).items()):
        split, kind = _FOLDERS.get(key, ("test", key))
        for index in range(count):
            rng = np.random.default_rng([kind_index, index])
            image = rng.normal(128, 20, (size, size, 3))
            mask = np.zeros((size, size), np.uint8)
            if kind != "good":
                side = max(size // 4, 1)
                top, left = rng.integers(0, size - side + 1, 2)
                mask[top : top + side, left : left + side] = 255
                image[mask > 0] = 240
            pixels = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).convert(mode)
            image_path = category_dir / split / kind / f"{index:03d}.png"
            image_path.parent.mkdir(parents=True, exist_ok=True)
            pixels.save(image_path)
            if kind != "good":
                mask_path = category_dir / "ground_truth" / kind / f"{index:03d}_mask.png"
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(mask_path)
    return category_dir


@pytest.fixture(name="make_mvtec_tree")
def make_mvtec_tree_fixture():
    """The make_mvtec_tree function, for tests that prefer a fixture to an import."""
    return make_mvtec_tree
