"""Shared test helpers: a tiny image tree in MVTec AD's exact layout.

Use it as a fixture (`def test_x(tmp_path, make_mvtec_tree): make_mvtec_tree(tmp_path)`) or
import it (`from conftest import make_mvtec_tree`).
"""

from __future__ import annotations

import contextlib
import os

# Before torch loads, here and in every stage the tests run: idle OpenMP threads sleep instead
# of spinning. `make test`'s two workers, each with its threads and its stages' subprocesses,
# share two cores, and a spinning thread takes a core from the others (the tests of training
# and the network: 112 s instead of 147 s). It changes no result: the thread count stays.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# First, before numpy and torch load: the test process computes with the kernels and threads of
# every stage, so what a test computes in-process has the bits the stages' subprocesses give
# (on an AVX-512 CPU the unpinned kernels give others).
import metricad.numerics  # noqa: F401, E402, I001

# isort: split
from collections.abc import Collection, Sequence
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
    *,
    modes: Sequence[str] | None = None,
    width: int | None = None,
    mask_value: int = 255,
    without_mask: Collection[str] = (),
) -> Path:
    """Write root/category/{train/good, test/<kind>, ground_truth/<defect>} and return the
    category folder.

    `counts` maps "train_good", "test_good" and defect names to numbers of images (default
    TREE_COUNTS). Images are grey noise saved in PIL `mode`; a defect image has a bright square
    exactly where its 0/255 mask (<name>_mask.png) is set. Deterministic.

    Real-data quirks: `modes` cycles PIL modes over each folder's images (overrides `mode`;
    "I;16" gives 16-bit PNGs), `width` makes images size (high) x width, `mask_value` is the
    mask's defect value (1 for 0/1 masks), and `without_mask` names "<defect>/<index>" images
    ("cut/001") whose mask is not written.
    """
    category_dir = Path(root) / category
    width = width or size
    for kind_index, (key, count) in enumerate((counts or TREE_COUNTS).items()):
        split, kind = _FOLDERS.get(key, ("test", key))
        for index in range(count):
            rng = np.random.default_rng([kind_index, index])
            image = rng.normal(128, 20, (size, width, 3))
            mask = np.zeros((size, width), np.uint8)
            if kind != "good":
                side = max(min(size, width) // 4, 1)
                top, left = rng.integers(0, [size - side + 1, width - side + 1])
                mask[top : top + side, left : left + side] = mask_value
                image[mask > 0] = 240
            rgb = np.clip(image, 0, 255).astype(np.uint8)
            image_mode = modes[index % len(modes)] if modes else mode
            image_path = category_dir / split / kind / f"{index:03d}.png"
            image_path.parent.mkdir(parents=True, exist_ok=True)
            _in_mode(rgb, image_mode).save(image_path)
            if kind != "good" and f"{kind}/{index:03d}" not in without_mask:
                mask_path = category_dir / "ground_truth" / kind / f"{index:03d}_mask.png"
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(mask_path)
    return category_dir


def make_photo_folder(
    root: str | Path, good: int = 12, defects: dict[str, int] | None = None, masked: int = 1
) -> Path:
    """A user's photo folder (data.source: folder): JPEGs of mixed sizes, good ones nested in
    two sub-folders, one folder per defect type, and masks (masks/<defect>/<name>.png) for the
    first `masked` images of each defect. Deterministic; returns `root`."""
    root = Path(root)
    for kind, count in {"good": good, **(defects or {})}.items():
        for index in range(count):
            rng = np.random.default_rng([len(kind), index])
            height, width = 48 + 8 * (index % 3), 48 + 16 * (index % 2)
            image = rng.normal(128, 20, (height, width, 3))
            mask = np.zeros((height, width), np.uint8)
            if kind != "good":
                mask[height // 4 : height // 2, width // 4 : width // 2] = 255
                image[mask > 0] = 240
            name = f"{kind}{index:02d}"
            folder = root / kind / (f"line{index % 2}" if kind == "good" else "")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"{name}.jpg")
            if kind != "good" and index < masked:
                (root / "masks" / kind).mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(root / "masks" / kind / f"{name}.png")
    return root


def _in_mode(rgb: np.ndarray, mode: str) -> Image.Image:
    """An RGB uint8 array as a PIL image in `mode`; "I;16" stretches grey to the 16-bit range."""
    if mode == "I;16":
        gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16)
        return Image.fromarray(gray * 257)
    return Image.fromarray(rgb).convert(mode)


# Shared fixtures that cost a minute to build, once per worker that uses them: the shared tiny
# run, the queued grid, and test_segmentation.py's trained network.
BUILT_ONCE = ("tiny_run", "grid", "trained")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the group marks added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: `make test`'s two workers share them out at the start, and the
    quick ones fill in at the end (a long test taken last would keep one worker busy alone).
    The tests of each BUILT_ONCE fixture all go to one worker (`--dist loadgroup`), which
    builds it once."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        for name in BUILT_ONCE:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))


@pytest.fixture(name="make_mvtec_tree")
def make_mvtec_tree_fixture():
    """The make_mvtec_tree function, for tests that prefer a fixture to an import."""
    return make_mvtec_tree


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One `dvc repro` of the demo at tiny params, shared: the project and the repro's output."""
    from helpers import TINY, make_project, run_cmd

    root = tmp_path_factory.mktemp("tiny")
    project = make_project(root, TINY)
    first = run_cmd(["dvc", "repro"], project)
    return {"project": project, "first": first}


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """An sshd on 127.0.0.1 for the SSH remote (tests/sshd.py), or {"unavailable": why}."""
    from sshd import SshdUnavailable, serving_sshd

    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(serving_sshd(tmp_path_factory.mktemp("sshd") / "server"))
        except SshdUnavailable as reason:
            server = {"unavailable": str(reason)}
        yield server


@pytest.fixture(scope="session")
def grid(tmp_path_factory, sshd):
    """A grid queued over two demo categories at tiny params and run by two workers, on the
    first machine of docs/grid.md's "Several machines": where an sshd runs, the project's DVC
    remote is on it (its address committed before the grid ran, this machine's login set), for
    tests/test_ssh_remote.py to push from. {"root", "project", "shown": its `dvc exp show`
    data, "storage": the remote's folder, "login": this machine's (None without an sshd)}."""
    from helpers import (
        GIT,
        GRID_CATEGORIES,
        TINY,
        make_project,
        run_cmd,
        run_queue,
        shown_experiments,
    )
    from sshd import login

    root = tmp_path_factory.mktemp("grid")
    project = make_project(root, TINY)
    storage, machine = root / "dvc-remote", None
    if "port" in sshd:
        url = f"ssh://127.0.0.1:{sshd['port']}{storage}"
        run_cmd(["dvc", "remote", "add", "-d", "storage", url], project)
        run_cmd([*GIT, "commit", "-qam", "DVC remote over SSH"], project)
        machine = login(root, "worker", sshd, project)
    categories = ",".join(GRID_CATEGORIES)
    run_cmd(["dvc", "exp", "run", "--queue", "-S", f"data.category={categories}"], project)
    run_queue(project, len(GRID_CATEGORIES), root / "queue-start.log")
    return {
        "root": root,
        "project": project,
        "shown": shown_experiments(project),
        "storage": storage,
        "login": machine,
    }
