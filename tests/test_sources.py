"""The data sources other than MVTec's tree (tests/test_mvtec_source.py): a plain folder of the
user's photos and a CSV list, their error cases, the registry, and the split they leave to
`split.*`."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from conftest import make_photo_folder
from PIL import Image

from metricad.data.manifest import SOURCE_COLUMNS
from metricad.data.sources import SOURCES, source_root
from metricad.data.split import split_manifest, split_warnings
from metricad.errors import MetricadError
from metricad.params import DataParams, SourceName, params_from_dict
from metricad.validation import section

# The folder source warns once about defect photos without a mask; the listing test checks it.
pytestmark = pytest.mark.filterwarnings("ignore:.*no mask for")


def _folder(root: Path, **data) -> object:
    return SOURCES["folder"](
        section(DataParams, source="folder", root=str(root), folder=data), root
    )


def _csv(listing: Path) -> object:
    return SOURCES["csv"](section(DataParams, source="csv", root=str(listing)), listing.parent)


def test_the_registry_holds_every_source_the_params_schema_names():
    SOURCES.check_names(SourceName)
    assert SOURCES.names() == sorted(typing.get_args(SourceName))
    with pytest.raises(MetricadError, match=r"data.source: no data source named 'nfs' \(known"):
        SOURCES["nfs"]


def test_folder_lists_nested_photos_of_mixed_sizes_with_their_masks(tmp_path):
    root = make_photo_folder(tmp_path / "photos", good=6, defects={"scratch": 3, "dent": 2})
    for folder in (root / "scratch" / "later", root / "masks" / "scratch" / "later"):
        folder.mkdir()
    Image.new("RGB", (40, 30)).save(root / "scratch" / "later" / "x.png")
    Image.new("L", (40, 30)).save(root / "masks" / "scratch" / "later" / "x_mask.png")
    (root / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"masks: no mask for 3 defect image\(s\): .*dent01.jpg"):
        table = _folder(root)
    assert len({Image.open(p).size for p in table["path"]}) > 1  # mixed sizes are fine
    assert list(table.columns) == SOURCE_COLUMNS
    assert (table["source_split"] == "").all()
    assert table.groupby("defect").size().to_dict() == {"dent": 2, "good": 6, "scratch": 4}
    assert list(table["label"]) == [0] * 6 + [1] * 6
    assert table["name"].is_unique
    assert "good/line1/good01" in set(table["name"]) and "scratch/later/x" in set(table["name"])
    masked = table[table["mask_path"] != ""]
    assert sorted(Path(p).name for p in masked["mask_path"]) == [
        "dent00.png",
        "scratch00.png",
        "x_mask.png",
    ]


def test_folder_of_good_photos_only_is_a_source(tmp_path):
    table = _folder(make_photo_folder(tmp_path, good=5))
    assert set(table["defect"]) == {"good"} and (table["mask_path"] == "").all()


def test_folder_good_and_masks_folders_can_be_renamed(tmp_path):
    root = make_photo_folder(tmp_path, good=3, defects={"dent": 2})
    (root / "good").rename(root / "ok")
    (root / "masks").rename(root / "gt")
    table = _folder(root, good="ok", masks="gt")
    assert table.groupby("defect").size().to_dict() == {"dent": 2, "good": 3}
    assert (table["mask_path"] != "").sum() == 1


def _empty_defect(root: Path) -> None:
    (root / "crack").mkdir()


def _mask_for_unknown_defect(root: Path) -> None:
    (root / "masks" / "crack").mkdir(parents=True)


def _mask_without_image(root: Path) -> None:
    Image.new("L", (48, 48)).save(root / "masks" / "dent" / "dent07.png")


def _mask_of_another_size(root: Path) -> None:
    Image.new("L", (10, 10)).save(root / "masks" / "dent" / "dent00.png")


def _image_in_root(root: Path) -> None:
    Image.new("RGB", (8, 8)).save(root / "stray.jpg")


def _no_good_folder(root: Path) -> None:
    (root / "good").rename(root / "fine")


def _defect_named_synthetic(root: Path) -> None:
    (root / "dent").rename(root / "synthetic")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_empty_defect, r"crack: defect folder has no images"),
        (_mask_for_unknown_defect, r"masks/crack: masks for a defect folder that does not exist"),
        (_mask_without_image, r"dent07.png: mask has no image dent07\.\* in"),
        (_mask_of_another_size, r"dent00.png: mask is 10x10 but its image .*dent00.jpg is 48x48"),
        (_image_in_root, r"stray.jpg: image directly in data.root"),
        (_no_good_folder, r"good: folder of good images does not exist \(folder layout expected"),
        (_defect_named_synthetic, r"synthetic: 'synthetic' cannot name a defect type"),
    ],
)
def test_folder_errors_name_the_file_and_what_was_expected(tmp_path, damage, message):
    root = make_photo_folder(tmp_path / "photos", good=3, defects={"dent": 2})
    damage(root)
    with pytest.raises(MetricadError, match=message):
        _folder(root)


def _write_csv(folder: Path, text: str) -> Path:
    listing = folder / "list.csv"
    listing.write_text(text)
    return listing


def test_csv_lists_photos_relative_to_its_folder(tmp_path):
    make_photo_folder(tmp_path, good=3, defects={"dent": 2})
    listing = _write_csv(
        tmp_path,
        "path,label,defect,mask_path\n"
        "good/line0/good00.jpg,good,,\n"
        f"{tmp_path}/good/line1/good01.jpg,good,good,\n"
        "good/line0/good02.jpg,good,,\n"
        "dent/dent00.jpg,anomalous,dent,masks/dent/dent00.png\n"
        "dent/dent01.jpg,anomalous,,\n",
    )
    table = _csv(listing)
    assert list(table["label"]) == [0, 0, 0, 1, 1]
    assert list(table["defect"]) == ["good", "good", "good", "dent", "anomalous"]
    assert table["mask_path"].tolist()[3] == (tmp_path / "masks/dent/dent00.png").as_posix()
    assert (table["source_split"] == "").all() and table["name"].is_unique
    without_masks = _write_csv(tmp_path, "path,label,defect\ngood/line0/good00.jpg,good,\n")
    assert len(_csv(without_masks)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,label\na.jpg,good\n", r"list.csv: columns are \['path', 'label'\].*missing: defect"),
        ("path,label,defect,notes\n", r"unknown: notes"),
        ("path,label,defect\n", r"list.csv: CSV file lists no image"),
        ("path,label,defect\ngood/line0/good00.jpg,ok,\n", r"line 2: label is 'ok'; expected"),
        ("path,label,defect\nmissing.jpg,good,\n", r"line 2: path .*missing.jpg does not exist"),
        ("path,label,defect\nlist.csv,good,\n", r"line 2: path .*list.csv is not an image file"),
        ("path,label,defect\ngood/line0/good00.jpg,good,dent\n", r"line 2: a good image has"),
        ("path,label,defect\ndent/dent00.jpg,anomalous,a/b\n", r"defect 'a/b' cannot name"),
        ("path,label,defect\ndent/dent00.jpg,anomalous,dent\n", r"lists no good image"),
        (
            "path,label,defect\ngood/line0/good00.jpg,good,\ngood/line0/good00.jpg,good,\n",
            r"line 3: .*good00.jpg is listed twice \(first on line 2\)",
        ),
        (
            "path,label,defect,mask_path\ngood/line0/good00.jpg,good,,masks/dent/dent00.png\n",
            r"line 2: a good image has a mask_path",
        ),
    ],
)
def test_csv_errors_name_the_file_line_and_column(tmp_path, text, message):
    make_photo_folder(tmp_path, good=1, defects={"dent": 1})
    with pytest.raises(MetricadError, match=message):
        _csv(_write_csv(tmp_path, text))


def test_split_holds_out_a_seeded_test_share_of_unassigned_good_images(tmp_path):
    table = _folder(make_photo_folder(tmp_path, good=20, defects={"dent": 4}))
    split = split_manifest(table, 0.5, seed=1, validation_fraction=0.25, test_fraction=0.2)
    good = split[split["label"] == 0]["split"].value_counts().to_dict()
    assert good == {"train": 12, "test": 4, "validation": 4}
    assert split[split["label"] == 1]["split"].value_counts().to_dict() == {"train": 2, "test": 2}
    assert split.equals(split_manifest(table, 0.5, 1, 0.25, 0.2))
    assert not split.equals(split_manifest(table, 0.5, 2, 0.25, 0.2))


def test_a_source_that_assigns_every_good_image_ignores_test_fraction(tmp_path):
    table = _folder(make_photo_folder(tmp_path, good=10, defects={"dent": 4}))
    table.loc[table["label"] == 0, "source_split"] = ["train"] * 7 + ["test"] * 3
    first = split_manifest(table, 0.5, 0, 0.2, test_fraction=0.0)
    assert first.equals(split_manifest(table, 0.5, 0, 0.2, test_fraction=0.5))
    assert (first.loc[table["source_split"] == "test", "split"] == "test").all()


def test_split_of_good_photos_only_warns_that_auroc_is_undefined(tmp_path):
    split = split_manifest(_folder(make_photo_folder(tmp_path, good=10)), 0.0, 0, 0.2, 0.2)
    assert split_warnings(split, 0.0) == [
        "split: the test split has no defect image; its image AUROC is undefined (null in metrics/)"
    ]
    with pytest.raises(MetricadError, match=r"no good image is left for training \(2 good"):
        split_manifest(split.iloc[:2].drop(columns="split"), 0.0, 0, 0.9, 0.5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"source": "csv", "root": "/no/list.csv"}, "data.root: CSV file '/no/list.csv' does not"),
        ({"source": "folder"}, "data.root must be set when data.source is 'folder'"),
        ({"source": "mvtec"}, "data.root must be set when data.source is 'mvtec'"),
        ({"source": "mvtec", "root": "/no/such/dir"}, "data.root: folder '/no/such/dir' does"),
    ],
)
def test_the_root_a_source_reads_is_checked_in_one_line(data, message):
    with pytest.raises(MetricadError, match=re.escape(message)):
        source_root(params_from_dict({"data": data}).data)
    assert source_root(params_from_dict({}).data) is None  # the demo reads no root
