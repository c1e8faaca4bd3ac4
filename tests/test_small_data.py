"""Small real-like data sets run with the committed defaults; messages show whole paths;
stages leave only what they wrote."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import LEATHER_DEFECTS, make_mvtec_tree
from helpers import make_project, run_cmd
from PIL import Image

from metricad.analysis.tsne import usable_perplexity
from metricad.data.images import check_image, load_mask
from metricad.data.sources import source_root
from metricad.data.sources.mvtec import scan_mvtec
from metricad.data.split import split_manifest, split_warnings
from metricad.errors import MetricadError
from metricad.model.training import settings_for_data
from metricad.params import params_from_dict

# --- data-dependent values: the nearest valid one, with a warning ----------------------


def test_perplexity_is_lowered_below_the_number_of_points():
    assert usable_perplexity(10.0, 30) == 10.0
    assert usable_perplexity(10.0, 9) == 8.0
    assert usable_perplexity(10.0, 2) == 1.0
    assert usable_perplexity(10.0, 1) is None


def test_batch_size_is_lowered_to_the_training_set():
    params = params_from_dict({"train": {"batch_size": 16}})
    train_params, warnings = settings_for_data(params, n_images=5, real_anomalies=2)
    assert train_params.batch_size == 5
    assert warnings == ["train.batch_size=16 is above the number of training images (5); used 5"]
    with pytest.raises(MetricadError, match="holds 1 image"):
        settings_for_data(params, n_images=1, real_anomalies=0)


def test_no_defect_to_spare_trains_on_synthetic_anomalies_instead():
    params = params_from_dict(
        {"split": {"anomalous_train_fraction": 0.5}, "train": {"synthetic_anomalies": "none"}}
    )
    train_params, warnings = settings_for_data(params, n_images=4, real_anomalies=0)
    assert train_params.synthetic_anomalies == "cutpaste"
    assert "trained with train.synthetic_anomalies=cutpaste" in warnings[0]
    # Asked for good-only training without synthetic anomalies: still an error.
    good_only = params_from_dict(
        {"split": {"anomalous_train_fraction": 0.0}, "train": {"synthetic_anomalies": "none"}}
    )
    with pytest.raises(MetricadError, match="train.synthetic_anomalies is 'none'"):
        settings_for_data(good_only, n_images=4, real_anomalies=0)


def test_split_warns_about_single_images_and_undefined_auroc(tmp_path):
    counts = {"train_good": 2, "color": 1, "cut": 2}
    scan = scan_mvtec(tmp_path, make_mvtec_tree(tmp_path, counts=counts).name)
    warnings = split_warnings(split_manifest(scan, 0.5, 0), 0.5)
    assert warnings == [
        "split.anomalous_train_fraction=0.5 puts no image of color (1) in training (too few "
        "images); they all stay in test",
        "split: the test split has no good image; its image AUROC is undefined (null in metrics/)",
    ]
    assert split_warnings(split_manifest(scan, 0.0, 0), 0.0) == [warnings[1]]


# --- paths are shown whole ------------------------------------------------------------

DEEP = ("a-rather-long-folder-name-" * 3, "another-long-folder-name-" * 3, "the-end-of-it")


def _deep(tmp_path):
    folder = tmp_path.joinpath(*DEEP)
    assert len(str(folder)) > 100
    return folder


def test_deep_data_root_is_shown_whole(tmp_path):
    root = _deep(tmp_path) / "mvtec-missing"
    with pytest.raises(MetricadError) as caught:
        source_root(params_from_dict({"data": {"source": "mvtec", "root": str(root)}}).data)
    assert str(root) in str(caught.value)


def test_deep_weights_path_is_shown_whole(tmp_path):
    weights = _deep(tmp_path) / "resnet18-missing.pth"
    with pytest.raises(MetricadError) as caught:
        params_from_dict({"model": {"weights": str(weights)}})
    assert str(weights) in str(caught.value)


def test_deep_image_and_mask_paths_are_shown_whole(tmp_path):
    folder = _deep(tmp_path)
    folder.mkdir(parents=True)
    image = folder / "broken-image-at-the-end.png"
    image.write_text("not an image")
    with pytest.raises(MetricadError) as caught:
        check_image(image)
    assert str(caught.value).startswith(f"{image}: ")
    mask = folder / "broken-image-at-the-end_mask.png"
    mask.write_bytes(b"")
    with pytest.raises(MetricadError) as caught:
        load_mask(mask)
    assert str(caught.value).startswith(f"{mask}: ")
    # A mask of the wrong size names both whole paths.
    category = make_mvtec_tree(folder, counts={"train_good": 1, "cut": 1})
    wrong = category / "ground_truth" / "cut" / "000_mask.png"
    Image.fromarray(np.zeros((64, 63), np.uint8)).save(wrong)
    with pytest.raises(MetricadError) as caught:
        scan_mvtec(folder, "leather")
    assert str(wrong) in str(caught.value)
    assert str(category / "test" / "cut" / "000.png") in str(caught.value)


# --- acceptance: a tiny real-like tree with the committed params ----------------------


@pytest.mark.slow
def test_tiny_tree_runs_end_to_end_with_the_committed_params(tmp_path):
    """4 good training images (3 after the validation share), 4 good test images, one image
    per defect type: every stage finishes, and the warnings name what was adjusted."""
    root = tmp_path / "mvtec"
    make_mvtec_tree(
        root,
        size=96,
        counts={"train_good": 4, "test_good": 4, **dict.fromkeys(LEATHER_DEFECTS, 1)},
    )
    # The committed params but 10 epochs and one thread: the warnings come from the data, not
    # the run length, and `make test`'s other worker holds the second core.
    tree = {"source": "mvtec", "root": str(root)}
    project = make_project(tmp_path, {"epochs": 10, "data": tree, "runtime": {"threads": 1}})
    done = run_cmd(["dvc", "repro"], project)
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
    expected = (
        "split.anomalous_train_fraction=0.5 puts no image of color (1), cut (1), fold (1), "
        "glue (1), poke (1) in training",
        "train.batch_size=16 is above the number of training images (3); used 3",
        "tsne.perplexity=10.0 is not below the number of images in the test map (9); used 8.0",
        "score.knn.k=5 is above the number of good training images (3); used k=3",
        "the Gaussian score fits 512 dimensions on 3 good training images",
    )
    for text in expected:
        assert any(text in line for line in warnings), (text, warnings)
    # The committed recipe already trains with CutPaste: nothing to fall back to.
    assert not any("trained with train.synthetic_anomalies" in line for line in warnings)
    metrics = {p.stem: json.loads(p.read_text()) for p in (project / "metrics").glob("*.json")}
    assert metrics["train"]["batch_size_used"] == 3
    assert metrics["train"]["synthetic_anomalies_used"] == "cutpaste"
    assert metrics["tsne"]["perplexity"] == {"train": 10.0, "test": 8.0, "all": 10.0}
    assert metrics["evaluate"]["score_settings"]["knn_k"] == 3
    assert set(metrics["evaluate"]["scores"]["gaussian"]["auroc_per_defect"]) == set(
        LEATHER_DEFECTS
    )

    # Stages run by hand (as while debugging) leave only what they wrote in their folders. They
    # run one after the other in one Python: a process each would load torch eight times.
    owned = (
        "data/prepared",
        "data/resized",
        "data/synthetic_sample",
        "plots/synthetic",
        "data/embeddings",
        "plots/tsne",
        "data/gradcam",
        "plots/gradcam/images",
        "plots/evaluate",
    )
    for folder in owned:
        (project / folder / "stale-from-last-run.png").write_bytes(b"old")
    stages = ("prepare", "resize", "synthesize", "embed", "score", "tsne", "gradcam", "evaluate")
    by_hand = "".join(f"runpy.run_path('stages/{s}.py', run_name='__main__')\n" for s in stages)
    run_cmd([sys.executable, "-c", f"import runpy\n{by_hand}"], project)
    assert not list(project.rglob("stale-from-last-run.png"))
    assert len(pd.read_csv(project / "data" / "resized" / "manifest.csv")) == 13
