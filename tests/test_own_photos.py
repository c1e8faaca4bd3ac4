"""End to end on a user's own photos, as the README tells them to run it: a folder of good
photos only (no defects, no masks); a folder with defect folders and some masks, trained on its
good photos only (MVTec AD's protocol), and the same photos as a CSV list."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_photo_folder
from helpers import TINY, make_project, run_cmd
from PIL import Image

from metricad.analysis.kinds import choose_iou_threshold
from metricad.data.manifest import read_manifest
from metricad.paths import PREPARED_MANIFEST

pytestmark = pytest.mark.slow


def _json(project: Path, name: str) -> dict:
    return json.loads((project / "metrics" / name).read_text())


def test_folder_of_good_photos_only_trains_sets_thresholds_and_predicts(tmp_path):
    photos = make_photo_folder(tmp_path / "photos", good=30)
    project = make_project(tmp_path, TINY)
    run_cmd(
        [
            "dvc",
            "exp",
            "run",
            "-S",
            "data.source=folder",
            "-S",
            f"data.root={photos}",
            "-S",
            "train.synthetic_anomalies=cutpaste",
            "-S",
            "split.anomalous_train_fraction=0",
        ],
        project,
    )
    data = _json(project, "data.json")
    assert data["images"] == {"test": {"good": 6}, "train": {"good": 19}, "validation": {"good": 5}}
    evaluate = _json(project, "evaluate.json")
    for name, point in evaluate["operating_points"].items():
        # The threshold comes from the validation photos; its false positive rate is measured
        # on the held-out good photos; what needs defects is absent, not an error.
        assert isinstance(point["threshold"], float), name
        assert 0.0 <= point["false_positive_rate"] <= 1.0
        assert point["recall"] is None and point["recall_per_defect"] == {}
        assert evaluate["scores"][name] == {"auroc": None, "auroc_per_defect": {}}
    assert evaluate["test"]["recall"] is None and evaluate["test"]["specificity"] is not None
    gradcam = _json(project, "gradcam.json")
    assert "test" not in gradcam and gradcam["synthetic"]["n_images"] > 0

    new = make_photo_folder(tmp_path / "new", good=3, defects={"dent": 2})
    args = ["python", "-m", "metricad.predict", str(new / "good"), str(new / "dent")]
    done = run_cmd([*args, "--out", "checked"], project)
    assert "5 image(s) scored" in done.stdout + done.stderr
    rows = (project / "checked" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "path,softmax,knn,gaussian,normalized,anomalous,heatmap" and len(rows) == 6
    assert len(list((project / "checked" / "heatmaps").glob("*.png"))) == 5


def _csv_listing(photos: Path) -> Path:
    """The folder's photos as a CSV list (data.source: csv), relative to the CSV, masks too."""
    lines = ["path,label,defect,mask_path"]
    lines += [f"{p.relative_to(photos)},good,," for p in sorted(photos.glob("good/*/*.jpg"))]
    for defect in ("dent", "scratch"):
        for image in sorted((photos / defect).glob("*.jpg")):
            mask = photos / "masks" / defect / f"{image.stem}.png"
            listed = mask.relative_to(photos) if mask.is_file() else ""
            lines.append(f"{defect}/{image.name},anomalous,{defect},{listed}")
    listing = photos / "list.csv"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def test_defect_folders_with_some_masks_then_the_same_photos_as_a_csv_list(tmp_path):
    """MVTec AD's protocol on the user's folder: good photos only in training, CutPaste
    anomalies instead of defects, every defect photo in the test split."""
    photos = make_photo_folder(tmp_path / "photos", good=24, defects={"dent": 6, "scratch": 6})
    good_only = {
        "data": {"source": "folder", "root": str(photos)},
        "split": {"anomalous_train_fraction": 0.0},
        "synthesize": {"samples": 6},
    }
    project = make_project(tmp_path, {**TINY, **good_only})
    # A mask that does not match its image: one line naming both, nothing written.
    mask = photos / "masks" / "dent" / "dent00.png"
    good_mask = mask.read_bytes()
    Image.new("L", (10, 10)).save(mask)
    refused = run_cmd([sys.executable, "stages/prepare.py"], project, check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "dent00.png: mask is 10x10 but its image" in refused.stderr
    assert not (project / "data/prepared/manifest.csv").exists()
    assert not (project / "metrics/data.json").exists()
    mask.write_bytes(good_mask)

    run_cmd(["dvc", "repro"], project)
    data = _json(project, "data.json")
    assert data["images"] == {
        "test": {"dent": 6, "good": 5, "scratch": 6},
        "train": {"good": 15},
        "validation": {"good": 4},
    }
    assert data["anomalous_without_mask"] == 10
    train = _json(project, "train.json")
    assert train["n_train_anomalous"] == 0 and train["synthetic_anomalies_used"] == "cutpaste"
    evaluate = _json(project, "evaluate.json")
    assert evaluate["test"]["n_images"] == sum(data["images"]["test"].values())
    curves = pd.read_csv(project / "plots" / "evaluate" / "roc.csv")
    for name, score in evaluate["scores"].items():
        assert set(score["auroc_per_defect"]) == {"dent", "scratch"}, name
        assert isinstance(score["auroc"], float)
        assert (curves["score"] == name).sum() >= 2, name  # its ROC curve is drawn
    gradcam = _json(project, "gradcam.json")
    # The two masked photos are in the test split; the rest are counted.
    assert "train" not in gradcam and gradcam["test"]["n_defect_images"] == 2
    assert gradcam["anomalous_without_mask"] == 10
    # The synthetic anomalies are mapped against their masks, and choose the IoU threshold.
    assert gradcam["synthetic"]["n_defect_images"] == 6
    index = pd.read_csv(project / "data" / "gradcam" / "index.csv")
    maps = np.load(project / "data" / "gradcam" / "heatmaps.npy")[index["split"] == "synthetic"]
    masks = np.load(project / "data" / "synthetic_sample" / "masks.npy")
    assert gradcam["test"]["iou_threshold"] == choose_iou_threshold(maps, masks)
    assert (project / "plots" / "gradcam" / "synthetic.png").stat().st_size > 0
    assert _json(project, "tsne.json")["synthetic"]["n_samples"] == 6
    for name in ("train", "all"):
        table = (project / "plots" / "tsne" / f"{name}.csv").read_text()
        assert table.count(",synthetic,") == 6
    assert (project / "plots" / "synthetic" / "examples.png").stat().st_size > 0
    diff = json.loads(run_cmd(["dvc", "metrics", "diff", "--json", "HEAD"], project).stdout)
    # The baseline in HEAD has no lock and no metrics; the diff still lists every score's
    # headline (metrics/scores/).
    assert "auroc" in diff.get("metrics/scores/gaussian.json", {})

    # The same photos listed in a CSV run the same: every stage after `prepare` reads only the
    # manifest and the files it names, and the CSV's manifest is the folder's (the same rows,
    # labels, masks and split) but for the names its outputs are filed under.
    by_folder = (read_manifest(project / PREPARED_MANIFEST), _json(project, "data.json"))
    listing = _csv_listing(photos)
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["data"] |= {"source": "csv", "root": str(listing)}
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    run_cmd(["dvc", "repro", "prepare"], project)
    by_csv = (read_manifest(project / PREPARED_MANIFEST), _json(project, "data.json"))
    assert by_csv[1] == by_folder[1]
    assert by_csv[0].drop(columns="name").equals(by_folder[0].drop(columns="name"))
