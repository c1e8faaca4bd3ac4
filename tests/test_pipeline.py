"""End to end: `dvc repro` on tiny params in a temporary copy of the repository."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_mvtec_tree
from helpers import TINY, make_project, merge_params, run_cmd, venv_env

STAGES = (
    "prepare",
    "resize",
    "train",
    "synthesize",
    "embed",
    "score",
    "tsne",
    "gradcam",
    "evaluate",
)


pytestmark = pytest.mark.slow


def _metrics(project: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((project / "metrics").glob("*.json"))}


def _files(project: Path, folder: str) -> list[Path]:
    return sorted(p for p in (project / "data" / folder).rglob("*") if p.is_file())


def test_demo_pipeline_end_to_end(tiny_run):
    project, first = tiny_run["project"], tiny_run["first"]
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first.stdout
    metrics = _metrics(project)
    assert set(metrics) == {"data.json", "train.json", "tsne.json", "gradcam.json", "evaluate.json"}
    evaluate = json.loads(metrics["evaluate.json"])
    assert {"accuracy", "errors", "precision", "recall", "f1", "auroc"} <= set(evaluate["test"])
    assert "train_and_test" in evaluate and "all" not in evaluate  # not read as a test result
    assert set(evaluate["scores"]) == {"softmax", "knn", "gaussian"}
    assert "silhouette" in json.loads(metrics["tsne.json"])
    for name in ("train", "test", "all"):
        assert (project / "plots" / "tsne" / f"{name}.png").stat().st_size > 0
    assert len(list((project / "plots" / "gradcam" / "kinds").glob("*.png"))) == 4

    # `dvc metrics show`: the headline, a row per score and per heat map, a few columns each.
    headline = run_cmd(["dvc", "metrics", "show", "--json"], project).stdout
    files = json.loads(headline)[""]["data"]
    assert sorted(files) == [
        "metrics/maps/gradcam++.json",
        *(f"metrics/scores/{name}.json" for name in ("gaussian", "knn", "softmax")),
    ]
    knn = files["metrics/scores/knn.json"]["data"]
    assert knn == {
        "auroc": evaluate["scores"]["knn"]["auroc"],
        "fpr": evaluate["operating_points"]["knn"]["false_positive_rate"],
        "recall": evaluate["operating_points"]["knn"]["recall"],
    }
    gradcam = json.loads(metrics["gradcam.json"])["test"]
    assert files["metrics/maps/gradcam++.json"]["data"] == {
        key: gradcam[key] for key in ("pointing_game", "pixel_auroc", "aupro")
    }

    # Nothing changed: nothing reruns.
    again = run_cmd(["dvc", "repro"], project)
    assert "Running stage" not in again.stdout

    # The network's floats again, each stage in a fresh process: byte-identical embeddings,
    # t-SNE maps, heat maps and their metrics (what follows reads only these; a fresh process's
    # training gives the same weights: the killed-training test).
    rerun = ("embed", "tsne", "gradcam")
    outputs = {p: p.read_bytes() for d in ("embeddings", "gradcam") for p in _files(project, d)}
    assert {"embeddings.npy", "heatmaps.npy"} <= {p.name for p in outputs}
    forced = run_cmd(["dvc", "repro", "--force", "--single-item", *rerun], project)
    assert [s for s in STAGES if f"Running stage '{s}'" in forced.stdout] == list(rerun)
    assert _metrics(project) == metrics
    assert {p: p.read_bytes() for p in outputs} == outputs

    # A new epoch count makes training stale (and so what follows it), never the data stages:
    # asked of `dvc status` without running them (`dvc exp run`: the good-only test).
    # (synthesize follows train: it samples the kind train used, from metrics/train.json.)
    params_file = project / "params.yaml"
    committed = params_file.read_text()
    params_file.write_text(committed.replace("epochs: 2\n", "epochs: 3\n", 1))
    stale = set(json.loads(run_cmd(["dvc", "status", "--json"], project).stdout))
    params_file.write_text(committed)
    assert "train" in stale
    assert not {"prepare", "resize"} & stale

    shown = run_cmd(["dvc", "plots", "show", "-o", "plots_html"], project)
    html = (project / "plots_html" / "index.html").read_text()
    for plot in (
        "loss",
        "accuracy",
        "roc",
        "confusion",
        "tsne_train",
        "tsne_test",
        "tsne_all",
        "train.png",
        "all.png",
        "correct.png",
        "no_response.png",
        "examples.png",
    ):
        assert plot in html, f"{plot} missing from dvc plots show ({shown.stdout})"


def test_mvtec_source_is_split_with_a_validation_share(tmp_path):
    root = tmp_path / "mvtec"
    make_mvtec_tree(
        root, "leather", size=96, counts={"train_good": 8, "test_good": 4, "color": 4, "cut": 4}
    )
    params = merge_params(
        json.loads(json.dumps(TINY)), {"data": {"source": "mvtec", "root": str(root)}}
    )
    project = make_project(tmp_path, params)
    run_cmd(["dvc", "repro", "prepare"], project)  # the rest runs on MVTec trees in test_small_data
    data = json.loads((project / "metrics" / "data.json").read_text())
    # split.validation_fraction 0.2 of the 8 good training images is held out.
    assert data["images"]["train"] == {"good": 6, "color": 2, "cut": 2}
    assert data["images"]["validation"] == {"good": 2}
    assert data["images"]["test"] == {"good": 4, "color": 2, "cut": 2}


def test_user_mistake_is_one_line_and_nonzero(tmp_path):
    project = make_project(tmp_path, merge_params(json.loads(json.dumps(TINY)), {"epochs": 0}))
    done = run_cmd([sys.executable, "stages/prepare.py"], project, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: params: epochs must be between 1 and 100000, got 0"
    assert not (project / "data").exists()


def test_gradcam_stage_refuses_a_checkpoint_without_its_head(tiny_run, tmp_path):
    # A copy of the shared tiny run: its checkpoint is damaged here.
    project = tmp_path / "project"
    shutil.copytree(tiny_run["project"], project, symlinks=True)
    written = (project / "metrics" / "gradcam.json").read_bytes()
    model = project / "models" / "model.pt"
    checkpoint = torch.load(model, weights_only=True)
    del checkpoint["state_dict"]["head.weight"]
    torch.save(checkpoint, model)
    done = run_cmd([sys.executable, "stages/gradcam.py"], project, check=False)
    assert done.returncode == 1
    assert "missing tensor(s) head.weight" in done.stderr
    assert (project / "metrics" / "gradcam.json").read_bytes() == written


def test_killed_training_resumes_to_the_same_weights(tmp_path):
    # With synthetic anomalies, so their draws resume exactly too.
    params = merge_params(
        json.loads(json.dumps(TINY)),
        {
            "epochs": 6,
            "train": {"synthetic_anomalies": "mixed"},
            "runtime": {"checkpoint_every": 2},
        },
    )
    project = make_project(tmp_path, params)
    run_cmd(["dvc", "repro", "resize"], project)
    state = project / "models" / "train_state.pt"
    process = subprocess.Popen(
        [sys.executable, "stages/train.py"],
        cwd=project,
        env=venv_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert state.exists(), "the train stage wrote no resumable state before it was killed"
    assert not (project / "models" / "model.pt").exists()
    interrupted_at = torch.load(state, weights_only=True)["epoch"]
    assert 2 <= interrupted_at < 6

    resumed = run_cmd(["dvc", "repro", "train"], project)
    assert f"continuing from the state of epoch {interrupted_at}" in resumed.stdout
    live_log = project / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv"
    # The live log of the resumed run has every epoch once, the ones before the kill included.
    assert [line.split("\t")[0] for line in live_log.read_text().splitlines()] == [
        "step",
        *"123456",
    ]

    # A longer run continues the finished one (nothing in the recipe depends on the epoch
    # count). Killed, resumed and continued, it ends with the bytes and the log of a run that
    # long from the start.
    params_file = project / "params.yaml"
    params_file.write_text(params_file.read_text().replace("epochs: 6", "epochs: 8", 1))
    continued = run_cmd(["dvc", "repro", "train"], project)
    assert "continuing from the state of epoch 6" in continued.stdout
    continued_weights = torch.load(project / "models" / "model.pt", weights_only=True)
    continued_log = live_log.read_text()
    state.unlink()
    run_cmd(["dvc", "repro", "--force", "train"], project)
    fresh = torch.load(project / "models" / "model.pt", weights_only=True)
    assert live_log.read_text() == continued_log
    for key, tensor in fresh["state_dict"].items():
        assert torch.equal(tensor, continued_weights["state_dict"][key]), key
