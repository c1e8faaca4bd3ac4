"""End to end on a user's own photos, as the README tells them to run it: a folder of good
photos only (no defects, no masks), and a CSV list with defect photos and some masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_photo_folder
from test_pipeline import TINY, _project, _run

pytestmark = pytest.mark.slow


def _json(project: Path, name: str) -> dict:
    return json.loads((project / "metrics" / name).read_text())


def test_folder_of_good_photos_only_trains_sets_thresholds_and_predicts(tmp_path):
    photos = make_photo_folder(tmp_path / "photos", good=30)
    project = _project(tmp_path, TINY)
    _run(
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
    done = _run([*args, "--out", "checked"], project)
    assert "5 image(s) scored" in done.stdout + done.stderr
    rows = (project / "checked" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "path,softmax,knn,gaussian,normalized,anomalous,heatmap" and len(rows) == 6
    assert len(list((project / "checked" / "heatmaps").glob("*.png"))) == 5


def test_csv_list_with_defects_and_some_masks_reports_auroc_and_gradcam(tmp_path):
    photos = make_photo_folder(tmp_path / "photos", good=24, defects={"dent": 6, "scratch": 6})
    masked = sorted(photos.glob("masks/*/*.png"))
    lines = ["path,label,defect,mask_path"]
    lines += [f"{p.relative_to(photos)},good,," for p in sorted(photos.glob("good/*/*.jpg"))]
    for defect in ("dent", "scratch"):
        for image in sorted((photos / defect).glob("*.jpg")):
            mask = photos / "masks" / defect / f"{image.stem}.png"
            lines.append(
                f"{defect}/{image.name},anomalous,{defect},{mask if mask in masked else ''}"
            )
    (photos / "list.csv").write_text("\n".join(lines) + "\n")
    project = _project(
        tmp_path,
        {**TINY, "data": {"source": "csv", "root": str(photos / "list.csv")}},
    )
    _run(["dvc", "repro"], project)
    evaluate = _json(project, "evaluate.json")
    for name, score in evaluate["scores"].items():
        assert set(score["auroc_per_defect"]) == {"dent", "scratch"}, name
        assert isinstance(score["auroc"], float)
    data = _json(project, "data.json")
    assert data["images"]["test"] == {"dent": 3, "good": 5, "scratch": 3}
    assert data["anomalous_without_mask"] == 10
    gradcam = _json(project, "gradcam.json")
    # The two masked photos are scored where they fell (train or test); the rest are counted.
    scored = sum(gradcam[part]["n_defect_images"] for part in ("train", "test") if part in gradcam)
    assert scored == 2 and gradcam["anomalous_without_mask"] >= 1
