"""The MVTec AD source (scanning trees, their error cases), the seeded split, the manifest."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import TREE_COUNTS
from PIL import Image

from metricad.data.manifest import MANIFEST_COLUMNS, SOURCE_COLUMNS, read_manifest, write_manifest
from metricad.data.sources.mvtec import MVTEC_CATEGORIES, scan_mvtec
from metricad.data.split import split_manifest, validation_rows
from metricad.errors import MetricadError


def _scan(root: Path, category: str = "leather"):
    """scan_mvtec, failing the test on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return scan_mvtec(root, category)


def test_categories():
    assert len(MVTEC_CATEGORIES) == 15 and "leather" in MVTEC_CATEGORIES


def test_scan_lists_every_image_with_label_defect_and_mask(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path)
    scan = _scan(tmp_path)
    assert list(scan.columns) == SOURCE_COLUMNS
    assert len(scan) == sum(TREE_COUNTS.values())
    assert scan.groupby(["source_split", "defect"]).size().to_dict() == {
        ("train", "good"): 4,
        ("test", "good"): 2,
        **{("test", defect): 2 for defect in ("color", "cut", "fold", "glue", "poke")},
    }
    assert (scan["label"] == (scan["defect"] != "good").astype(int)).all()
    first = scan.iloc[0]
    assert first["path"] == f"{category_dir}/test/color/000.png"
    assert first["mask_path"] == f"{category_dir}/ground_truth/color/000_mask.png"
    assert (scan.loc[scan["label"] == 0, "mask_path"] == "").all()
    assert all(Path(p).is_file() for p in scan.loc[scan["label"] == 1, "mask_path"])
    # Sorted by (source_split, defect, file name).
    names = scan["path"].map(lambda p: Path(p).name)
    keys = list(zip(scan["source_split"], scan["defect"], names, strict=True))
    assert keys == sorted(keys)


def test_scan_keeps_relative_roots_relative(tmp_path, monkeypatch, make_mvtec_tree):
    monkeypatch.chdir(tmp_path)
    make_mvtec_tree("data")
    scan = _scan(Path("data"))
    assert scan["path"].str.startswith("data/leather/").all()


def test_scan_ignores_hidden_and_non_image_files(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path)
    for folder in ("train/good", "test/cut", "ground_truth/cut"):
        for junk in (".DS_Store", "._000.png", "notes.txt", "Thumbs.db"):
            (category_dir / folder / junk).write_bytes(b"junk")
    (category_dir / "test" / ".cache").mkdir()
    (category_dir / "test" / "README").write_text("about this set")
    (category_dir / ".DS_Store").write_bytes(b"junk")
    # Upper-case and non-PNG extensions are images too.
    shutil.copy(category_dir / "train/good/000.png", category_dir / "train/good/100.PNG")
    shutil.copy(category_dir / "train/good/000.png", category_dir / "train/good/101.jpg")
    scan = _scan(tmp_path)
    assert len(scan) == sum(TREE_COUNTS.values()) + 2
    assert not scan["path"].str.contains(r"/\.|notes|Thumbs", regex=True).any()


def _remove(path: Path) -> Path:
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    return path


def _cleared(path: Path) -> Path:
    _remove(path).mkdir()
    return path


def _empty(path: Path) -> Path:
    for image in path.glob("*.png"):
        image.unlink()
    (path / "notes.txt").write_text("not an image")
    return path


# Each case breaks the tree and returns the path the error message must name.
BROKEN_TREES = {
    "root missing": lambda root, cat: root / "nowhere",
    "category missing": lambda root, cat: _remove(cat),
    "train/good missing": lambda root, cat: _remove(cat / "train" / "good"),
    "train/good empty": lambda root, cat: _empty(cat / "train" / "good"),
    "test missing": lambda root, cat: _remove(cat / "test"),
    "test without subfolders": lambda root, cat: _cleared(cat / "test"),
    "defect folder empty": lambda root, cat: _empty(cat / "test" / "fold"),
    "mask without image": lambda root, cat: _remove(cat / "test" / "glue" / "001.png").parent,
    "mask of unknown defect": lambda root, cat: shutil.copytree(
        cat / "ground_truth" / "cut", cat / "ground_truth" / "scratch"
    ),
}


@pytest.mark.parametrize("case", BROKEN_TREES)
def test_scan_errors_name_the_path(tmp_path, make_mvtec_tree, case):
    category_dir = make_mvtec_tree(tmp_path / "data")
    named = BROKEN_TREES[case](tmp_path / "data", category_dir)
    root = named if case == "root missing" else tmp_path / "data"
    with pytest.raises(MetricadError, match=re.escape(str(named))):
        scan_mvtec(root, "leather")


def test_missing_category_lists_the_present_ones(tmp_path, make_mvtec_tree):
    make_mvtec_tree(tmp_path, category="carpet")
    make_mvtec_tree(tmp_path, category="tile")
    with pytest.raises(MetricadError, match=r"data\.category.*leather.*carpet, tile"):
        scan_mvtec(tmp_path, "leather")


def test_missing_mask_warns_and_leaves_mask_path_empty(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path)
    (category_dir / "ground_truth" / "poke" / "001_mask.png").unlink()
    with pytest.warns(UserWarning, match="1 defect image.*test/poke/001.png"):
        scan = scan_mvtec(tmp_path, "leather")
    row = scan[scan["path"].str.endswith("poke/001.png")].iloc[0]
    assert row["mask_path"] == "" and row["label"] == 1


def _split_tree(root: Path, make_mvtec_tree):
    make_mvtec_tree(root, counts={"train_good": 3, "test_good": 4, "color": 5, "cut": 3, "poke": 1})
    return _scan(root)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_split_counts_per_defect_type(tmp_path, make_mvtec_tree, fraction):
    scan = _split_tree(tmp_path, make_mvtec_tree)
    split = split_manifest(scan, fraction, seed=3)
    assert split[SOURCE_COLUMNS].equals(scan)  # row order and columns kept
    assert (split.loc[split["source_split"] == "train", "split"] == "train").all()
    test_good = (split["source_split"] == "test") & (split["label"] == 0)
    assert (split.loc[test_good, "split"] == "test").all()
    for defect, n in {"color": 5, "cut": 3, "poke": 1}.items():
        rows = split[split["defect"] == defect]
        assert (rows["split"] == "train").sum() == round(fraction * n)
        assert len(rows) == n


def test_split_is_seeded(tmp_path, make_mvtec_tree):
    scan = _split_tree(tmp_path, make_mvtec_tree)
    first = split_manifest(scan, 0.4, seed=7)
    assert first.equals(split_manifest(scan, 0.4, seed=7))
    assert any(not first.equals(split_manifest(scan, 0.4, seed=s)) for s in range(8, 12))


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_split_rejects_fraction_outside_unit_interval(tmp_path, make_mvtec_tree, fraction):
    scan = _split_tree(tmp_path, make_mvtec_tree)
    with pytest.raises(MetricadError, match="anomalous_train_fraction"):
        split_manifest(scan, fraction, seed=0)


def test_manifest_round_trip(tmp_path, make_mvtec_tree):
    make_mvtec_tree(tmp_path)
    manifest = split_manifest(_scan(tmp_path), 0.5, seed=0)
    path = tmp_path / "out" / "manifest.csv"
    write_manifest(manifest, path)
    assert path.read_text().splitlines()[0] == ",".join(MANIFEST_COLUMNS)
    assert ",," in path.read_text()  # an empty mask_path is an empty field
    loaded = read_manifest(path)
    assert list(loaded.columns) == MANIFEST_COLUMNS
    assert loaded["label"].dtype.kind == "i"
    assert not loaded.isna().any().any()
    for column in MANIFEST_COLUMNS:
        assert loaded[column].tolist() == manifest[column].tolist()


def test_read_manifest_errors(tmp_path):
    missing = tmp_path / "none.csv"
    with pytest.raises(MetricadError, match=re.escape(str(missing))):
        read_manifest(missing)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("path,label\na.png,0\n")
    with pytest.raises(MetricadError, match=f"{re.escape(str(wrong))}.*columns"):
        read_manifest(wrong)
    bad_label = tmp_path / "bad_label.csv"
    bad_label.write_text(",".join(MANIFEST_COLUMNS) + "\na.png,x,good,,train,train\n")
    with pytest.raises(MetricadError, match=f"{re.escape(str(bad_label))}.*label"):
        read_manifest(bad_label)


def test_names_that_are_not_three_digits(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path, counts={"train_good": 1, "cut": 1})
    cut, masks = category_dir / "test" / "cut", category_dir / "ground_truth" / "cut"
    for stem in ("0001", "img 7", "a.b", "défaut"):
        shutil.copy(cut / "000.png", cut / f"{stem}.png")
        shutil.copy(masks / "000_mask.png", masks / f"{stem}_mask.png")
    scan = _scan(tmp_path)
    rows = scan[scan["defect"] == "cut"]
    assert sorted(Path(p).stem for p in rows["path"]) == sorted(
        ["000", "0001", "img 7", "a.b", "défaut"]
    )
    assert all(
        Path(m).name == f"{Path(p).stem}_mask.png"
        for p, m in rows[["path", "mask_path"]].itertuples(index=False)
    )


def test_two_images_with_one_name_are_ambiguous(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path, counts={"train_good": 1, "cut": 1})
    shutil.copy(category_dir / "test/cut/000.png", category_dir / "test/cut/000.jpg")
    with pytest.raises(MetricadError, match=r"test/cut: two images share the name '000'"):
        scan_mvtec(tmp_path, "leather")


def test_mask_not_named_like_its_image(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path, counts={"train_good": 1, "cut": 1})
    mask = category_dir / "ground_truth" / "cut" / "000_mask.png"
    renamed = mask.rename(mask.with_name("000.png"))
    with pytest.raises(MetricadError, match=f"{re.escape(str(renamed))}: mask names must end"):
        scan_mvtec(tmp_path, "leather")


def test_masks_for_good_images_are_refused(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path, counts={"train_good": 1, "test_good": 1, "cut": 1})
    good_masks = category_dir / "ground_truth" / "good"
    shutil.copytree(category_dir / "ground_truth" / "cut", good_masks)
    with pytest.raises(MetricadError, match=f"{re.escape(str(good_masks))}: defect-free"):
        scan_mvtec(tmp_path, "leather")


def test_mask_size_mismatch_names_both_files(tmp_path, make_mvtec_tree):
    category_dir = make_mvtec_tree(tmp_path, counts={"train_good": 1, "cut": 2})
    mask = category_dir / "ground_truth" / "cut" / "001_mask.png"
    Image.fromarray(np.zeros((64, 63), np.uint8)).save(mask)
    image = category_dir / "test" / "cut" / "001.png"
    with pytest.raises(MetricadError) as caught:
        scan_mvtec(tmp_path, "leather")
    assert str(caught.value) == (
        f"{mask}: mask is 63x64 but its image {image} is 64x64; masks must have their image's size"
    )


BROKEN_FILES = {
    "zero-byte": lambda path: path.write_bytes(b""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:-20]),
    "text named .png": lambda path: path.write_text("this is not an image\n"),
}


@pytest.mark.parametrize(
    "where", ["train/good/002.png", "test/cut/001.png", "ground_truth/cut/000_mask.png"]
)
@pytest.mark.parametrize("broken", BROKEN_FILES)
def test_broken_file_stops_the_scan_naming_it(tmp_path, make_mvtec_tree, where, broken):
    category_dir = make_mvtec_tree(tmp_path)
    BROKEN_FILES[broken](category_dir / where)
    with pytest.raises(MetricadError, match=re.escape(f"{category_dir / where}: not")):
        scan_mvtec(tmp_path, "leather")


def test_unlistable_folder_is_one_error(tmp_path, make_mvtec_tree, monkeypatch):
    # Tests may run as root, where chmod 000 does not stop reading: fake the refusal.
    category_dir = make_mvtec_tree(tmp_path)
    denied = category_dir / "test" / "cut"
    listing = Path.iterdir

    def iterdir(self):
        if self == denied:
            raise PermissionError(13, "Permission denied")
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(MetricadError, match=f"{re.escape(str(denied))}: cannot list folder"):
        scan_mvtec(tmp_path, "leather")


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16", "1"])
def test_scan_accepts_every_png_mode(tmp_path, make_mvtec_tree, mode):
    make_mvtec_tree(tmp_path, mode=mode, counts={"train_good": 1, "cut": 1})
    assert len(_scan(tmp_path)) == 2


def test_operating_points_fall_back_to_good_training_images_with_a_warning():
    split = np.array(["train", "train", "validation", "test"])
    labels = np.array([0, 1, 0, 0])
    chosen, warnings = validation_rows(split, labels)
    assert chosen.tolist() == [False, False, True, False] and warnings == []
    chosen, warnings = validation_rows(np.array(["train", "train", "test"]), np.array([0, 1, 0]))
    assert chosen.tolist() == [True, False, False]
    assert warnings[0].startswith("split.validation_fraction leaves no validation image")


def test_split_holds_out_a_seeded_share_of_train_good_only(tmp_path, make_mvtec_tree):
    scan = scan_mvtec(tmp_path, make_mvtec_tree(tmp_path) and "leather")
    split = split_manifest(scan, 0.5, 0, validation_fraction=0.5)["split"]
    good = (scan["source_split"] == "train").to_numpy()
    assert (split[good] == "validation").sum() == 2 and (split[~good] != "validation").all()
    again = split_manifest(scan, 0.5, 0, validation_fraction=0.5)["split"]
    assert split.equals(again)
