"""`python -m metricad.predict`, the Detector and the ONNX export on the shared tiny run: the
same scores as the pipeline's own (bit for bit), new images of any size, one clear line for
every bad input."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_mvtec_tree
from helpers import run_cmd

from metricad import predict
from metricad.data.images import load_rgb
from metricad.errors import run_stage
from metricad.files import read_csv
from metricad.model.inference import embed_and_score, softmax_score
from metricad.scoring.scorer_file import load_scoring, read_scoring, save_scoring
from metricad.serving.detector import Detector
from metricad.serving.scoring_net import ScoringNet

pytestmark = pytest.mark.slow


def _predict(project: Path, *args: str, check: bool = True):
    return run_cmd([sys.executable, "-m", "metricad.predict", *args], project, check=check)


def _predict_here(capsys, *args: str) -> str:
    """`python -m metricad.predict ARGS` in this process: its stderr, after checking that it
    exited with status 1."""
    with pytest.raises(SystemExit) as exit_:
        run_stage(lambda: predict.main(args))
    assert exit_.value.code == 1
    return capsys.readouterr().err


def _pipeline_scores(project: Path) -> pd.DataFrame:
    """What the evaluate stage scores, per test image: the stored scoring applied to the
    embed stage's embeddings, keyed by <defect>/<file name>."""
    predictions = read_csv(project / "data/embeddings/predictions.csv")
    head = load_scoring(project / "models/scorer.npz")
    embeddings = torch.from_numpy(np.load(project / "data/embeddings/embeddings.npy"))
    probabilities = torch.tensor(predictions["prob_anomalous"].to_numpy())
    scores = pd.DataFrame(head.score_values(embeddings, probabilities).numpy(), columns=head.names)
    scores.index = ["/".join(Path(p).parts[-2:]) for p in predictions["path"]]
    return scores[(predictions["split"] == "test").to_numpy()]


def test_predict_on_the_test_images_gives_the_pipelines_scores_bit_for_bit(tiny_run, tmp_path):
    project = tiny_run["project"]
    # The original (unresized) test images: predict resizes them as the resize stage did.
    test_folder = project / "data/prepared/synthetic/leather/test"
    done = _predict(project, str(test_folder), "--out", str(tmp_path / "out"))
    assert done.stdout.strip().splitlines()[-1].startswith("predict: ")
    table = read_csv(tmp_path / "out/predictions.csv")
    table.index = ["/".join(Path(p).parts[-2:]) for p in table["path"]]
    expected = _pipeline_scores(project)
    # The folder also holds the defect images the split put in training.
    assert len(table) == len(list(test_folder.rglob("*.png")))
    assert set(expected.index) <= set(table.index)
    for name in expected.columns:
        assert (table.loc[expected.index, name].to_numpy() == expected[name].to_numpy()).all(), name
    assert table["normalized"].between(0, 1).all()
    assert len(list((tmp_path / "out/heatmaps").glob("*.png"))) == len(table)


def test_new_images_of_another_size_and_a_broken_file(tiny_run, tmp_path):
    project = tiny_run["project"]
    folder = make_mvtec_tree(tmp_path / "new", size=80, counts={"test_good": 3, "cut": 2})
    (folder / "test" / "cut" / "broken.png").write_text("not an image")
    done = _predict(project, str(folder / "test"), "--out", str(tmp_path / "out"), check=False)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png: not an image" in errors[0]
    table = read_csv(tmp_path / "out/predictions.csv")
    assert len(table) == 5 and list(table.columns) == [
        "path",
        "softmax",
        "knn",
        "gaussian",
        "normalized",
        "anomalous",
        "heatmap",
    ]
    assert sorted(p.name for p in (tmp_path / "out/heatmaps").glob("*.png")) == [
        "000-1.png",
        "000.png",
        "001-1.png",
        "001.png",
        "002.png",
    ]
    assert "5 image(s) scored" in done.stdout and "1 unreadable" in done.stdout

    # The same from Python.
    detector = Detector.load(project / "models")
    paths = [Path(p) for p in table["path"]]
    result = detector.predict([load_rgb(p) for p in paths])
    for name in ("softmax", "knn", "gaussian", "normalized"):
        np.testing.assert_array_equal(result.table[name].to_numpy(), table[name].to_numpy())


def test_bad_inputs_are_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    project = tiny_run["project"]
    monkeypatch.chdir(project)  # as the command runs: models/ in the project
    image = project / "data/prepared/synthetic/leather/test/good/000.png"
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other-version"
    shutil.copytree(project / "models", other)
    checkpoint = torch.load(other / "model.pt", weights_only=True)
    checkpoint["format"] = "metricad-checkpoint/0"
    torch.save(checkpoint, other / "model.pt")
    # The command once as a user runs it (a fresh process), the other cases in this one.
    done = _predict(project, str(image), "--model", str(tmp_path / "nowhere"), check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "model.pt: checkpoint not found" in done.stderr
    cases = {
        (str(empty),): "empty: folder holds no image",
        (str(tmp_path / "*.jpg"),): "no such file, folder or matching files",
        (str(image), "--model", str(other)): "written by another metricad version",
    }
    for args, message in cases.items():
        stderr = _predict_here(capsys, *args, "--out", str(tmp_path / "out"))
        assert stderr.count("\n") == 1 and message in stderr, stderr
    (other / "model.pt").unlink()
    shutil.copy(project / "models/model.pt", other / "model.pt")
    (other / "scorer.npz").write_bytes(b"broken")
    stderr = _predict_here(capsys, str(image), "--model", str(other))
    assert "scorer.npz: not a readable scorer" in stderr


def test_onnx_export_gives_the_pytorch_scores(tiny_run, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    project = tiny_run["project"]
    out = tmp_path / "model.onnx"
    done = run_cmd([sys.executable, "-m", "metricad.export", "--out", str(out)], project)
    assert "wrote" in done.stdout
    detector = Detector.load(project / "models", "cpu")
    folder = project / "data/prepared/synthetic/leather/test"
    images = [load_rgb(p) for p in sorted(folder.rglob("*.png"))]
    result = detector.predict(images, heatmaps=False)
    session = onnxruntime.InferenceSession(str(out))
    batch = np.ascontiguousarray(result.images.transpose(0, 3, 1, 2))
    names = [output.name for output in session.get_outputs()]
    assert names == [
        "embedding",
        "score_softmax",
        "score_knn",
        "score_gaussian",
        "normalized",
        "anomalous",
    ]
    embedding, softmax, *scores, normalized, anomalous = session.run(None, {"image": batch})
    assert embedding.shape == (len(images), 1, 32)  # one view (embed.views: single)
    # The one scoring head (scoring/head.py) in both. Measured: at most 2e-6 (softmax, which
    # predict rounds to 6 decimals) and a relative 3e-7.
    np.testing.assert_allclose(softmax, result.table["softmax"], atol=5e-6)
    for name, values in zip(("knn", "gaussian"), scores, strict=True):
        np.testing.assert_allclose(values, result.table[name], rtol=1e-5, err_msg=name)
    # normalized divides the score by the span: its difference is the score's, over the span.
    np.testing.assert_allclose(normalized, result.table["normalized"], atol=1e-4)
    # The verdict agrees wherever the score is not within rounding of the threshold.
    threshold = float(detector.head.thresholds[detector.head.names.index("gaussian")])
    decisive = (np.abs(result.table["gaussian"] - threshold) > 1e-5 * abs(threshold)).to_numpy()
    assert decisive.any()
    assert (anomalous[decisive] == result.table["anomalous"].to_numpy()[decisive]).all()


def test_dihedral_views_reach_predict_and_the_exported_module(tiny_run, tmp_path):
    """`embed.views: dihedral` travels in models/scorer.npz (from embed, via score): the
    detector, with heat maps or without, and the module the ONNX export traces (ScoringNet)
    score the mean over the eight views."""
    project = tiny_run["project"]
    models = tmp_path / "models"
    shutil.copytree(project / "models", models)
    head, embedding = read_scoring(models / "scorer.npz")
    save_scoring(models / "scorer.npz", head, {**embedding, "views": "dihedral"})
    detector = Detector.load(models, "cpu")
    folder = project / "data/prepared/synthetic/leather/test"
    images = [load_rgb(p) for p in sorted(folder.rglob("*.png"))[:6]]
    with_maps, without = detector.predict(images), detector.predict(images, heatmaps=False)
    tensor = torch.from_numpy(without.images).permute(0, 3, 1, 2).contiguous()
    embeddings, probabilities, _ = embed_and_score(
        detector.model, tensor, detector.batch_size, detector.device, False, views="dihedral"
    )
    expected, _, _ = detector.head(
        torch.from_numpy(embeddings), torch.from_numpy(softmax_score(probabilities))
    )
    names = list(detector.head.names)
    for result in (with_maps, without):
        np.testing.assert_array_equal(result.table[names].to_numpy(), expected.numpy())
    assert with_maps.heatmaps.shape[0] == len(images)
    single = Detector.load(project / "models", "cpu").predict(images, heatmaps=False)
    assert not np.array_equal(single.table["gaussian"], without.table["gaussian"])
    column = names.index("gaussian")
    with torch.no_grad():
        embedding, *values = ScoringNet(detector.model, detector.head, detector.views)(tensor)
    np.testing.assert_allclose(embedding.numpy(), embeddings, atol=1e-5)
    np.testing.assert_allclose(values[column], expected[:, column], rtol=1e-5)
    # The ONNX file of that module: test_patch_memory.py (8 views of the embedding there too).
