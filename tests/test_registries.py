"""The registries (sources, scores, CAM methods) name what the params schema names, and adding
a score is one file plus one name: docs/architecture.md's worked example, run as written."""

from __future__ import annotations

import json
import re
import shutil
import sys
import typing
from pathlib import Path

import pytest
import yaml
from helpers import REPO, run_cmd

from metricad.analysis.cams import CAMS
from metricad.data.anomalies import ANOMALIES
from metricad.data.framing import FRAMINGS
from metricad.data.sources import SOURCES
from metricad.model.heads import HEADS
from metricad.model.views import VIEWS
from metricad.params import (
    CamMethod,
    Framing,
    ModelParams,
    ScoreName,
    SourceName,
    SyntheticKind,
    Views,
)
from metricad.scoring import SCORES


def test_every_registry_holds_what_the_params_schema_names():
    registries = (
        (SOURCES, SourceName),
        (SCORES, ScoreName),
        (CAMS, CamMethod),
        (VIEWS, Views),
    )
    for registry, schema in registries:
        registry.check_names(schema)
        assert registry.names() == sorted(typing.get_args(schema))
    FRAMINGS.check_names(Framing, without=("auto",))  # auto: the resize stage chooses one
    ANOMALIES.check_names(SyntheticKind, without=("none",))
    HEADS.check_names(typing.get_type_hints(ModelParams)["head"])


def _worked_example(title: str) -> tuple[str, str]:
    """A worked example's file and its schema line, from docs/architecture.md."""
    page = (REPO / "docs" / "architecture.md").read_text()
    section = page.split(f"## Worked example: {title}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return blocks[0], blocks[1].strip()


def _library_with(tmp_path: Path, file: str, code: str, schema_line: str) -> Path:
    """A copy of src/ with one new entry file and its name in the params schema."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (src / "metricad" / file).write_text(code)
    params_py = src / "metricad/params.py"
    name = schema_line.split(" = ", 1)[0]
    old = re.search(rf"^{name} = .*$", params_py.read_text(), flags=re.M).group(0)
    params_py.write_text(params_py.read_text().replace(old, schema_line))
    return src


def test_a_new_anomaly_kind_is_one_file_and_one_name(tmp_path):
    code, schema_line = _worked_example("a new synthetic anomaly kind")
    src = _library_with(tmp_path, "data/anomalies/speck.py", code, schema_line)
    check = """
import torch
from metricad.data.anomalies import ANOMALIES, corrupt_batch, synthetic_sample
from metricad.params import SyntheticKind, params_from_dict

ANOMALIES.check_names(SyntheticKind, without=("none",))
params = params_from_dict({"train": {"synthetic_anomalies": "speck"}})
assert params.train.synthetic_anomalies == "speck"
images = torch.full((4, 3, 64, 64), 200, dtype=torch.uint8)
labels = torch.zeros(4, dtype=torch.long)
generator = torch.Generator().manual_seed(0)
out, out_labels, masks = corrupt_batch(images, labels, "speck", 0.5, 0.3, generator)
assert out_labels.tolist().count(1) == 2 and masks.any(dim=(1, 2)).sum() == 2
inside = masks[:, None].expand_as(out)
assert (out[inside] == 50).all() and (out[~inside] == 200).all()
sample = synthetic_sample(images, 3, "speck", 0.3, seed=0)
assert sample[3] == ["speck"] * 3
print("speck ok")
"""
    done = run_cmd([sys.executable, "-c", check], tmp_path, env={"PYTHONPATH": str(src)})
    assert "speck ok" in done.stdout


@pytest.mark.slow
def test_a_new_score_with_a_setting_is_one_file_and_one_name(tiny_run, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(tiny_run["project"], project, symlinks=True)
    code, schema_line = _worked_example("a new score with a setting")
    (project / "src/metricad/scoring/centroid.py").write_text(code)
    params_py = project / "src/metricad/params.py"
    old = re.search(r"^ScoreName = .*$", params_py.read_text(), flags=re.M).group(0)
    params_py.write_text(params_py.read_text().replace(old, schema_line))
    params_yaml = project / "params.yaml"
    params = yaml.safe_load(params_yaml.read_text())
    params["score"]["scores"].append("centroid")
    params["score"]["centroid"] = {"trim": 0.9}
    params_yaml.write_text(yaml.safe_dump(params, sort_keys=False))
    # Only the scores' stages: the rest would rerun too (params.py is every stage's code).
    # The copy's own library, not the one the test environment has installed.
    env = {"PYTHONPATH": str(project / "src")}
    refused = run_cmd(["dvc", "repro", "--single-item", "score"], project, env=env, check=False)
    assert refused.returncode != 0
    assert (
        "score.centroid.trim must be between 0.0 and 0.5, got 0.9"
        in refused.stdout + refused.stderr
    )
    params["score"]["centroid"] = {"trim": 0.25}
    params_yaml.write_text(yaml.safe_dump(params, sort_keys=False))
    run_cmd(["dvc", "repro", "--single-item", "score"], project, env=env)
    run_cmd(["dvc", "repro", "--single-item", "evaluate"], project, env=env)
    evaluate = json.loads((project / "metrics/evaluate.json").read_text())
    assert set(evaluate["scores"]) == {"softmax", "knn", "gaussian", "centroid"}
    assert isinstance(evaluate["scores"]["centroid"]["auroc"], float)
    assert set(evaluate["scores"]["centroid"]["auroc_per_defect"]) == set(
        evaluate["scores"]["knn"]["auroc_per_defect"]
    )
    assert isinstance(evaluate["operating_points"]["centroid"]["threshold"], float)


def test_a_new_view_set_is_one_file_and_one_name(tmp_path):
    code, schema_line = _worked_example("a new view set")
    src = _library_with(tmp_path, "model/views/flips.py", code, schema_line)
    check = """
import numpy as np
import torch
from metricad.model.inference import embed_and_score
from metricad.model.torch_model import build_model
from metricad.data.framing import FRAMINGS
from metricad.model.heads import HEADS
from metricad.model.views import VIEWS
from metricad.params import Views, params_from_dict
from metricad.scoring.head import ScoringHead

VIEWS.check_names(Views)
assert params_from_dict({"embed": {"views": "flips"}}).embed.views == "flips"
torch.manual_seed(0)
model = build_model(input_size=32, embedding_dim=8).eval()
images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
embeddings, probabilities, _ = embed_and_score(model, images, 4, torch.device("cpu"), False,
                                            views="flips")
assert embeddings.shape == (6, 2, 8) and probabilities.shape == (6, 2)
single, _, _ = embed_and_score(model, images, 4, torch.device("cpu"), False)
np.testing.assert_array_equal(embeddings[:, 0], single[:, 0])
head = ScoringHead(["knn", "gaussian"], "gaussian")
head.fit_scores(embeddings[:4])
values = head.score_values(torch.from_numpy(embeddings), torch.from_numpy(probabilities[:, 1]))
assert values.shape == (6, 2) and torch.isfinite(values).all()
print("flips ok")
"""
    done = run_cmd([sys.executable, "-c", check], tmp_path, env={"PYTHONPATH": str(src)})
    assert "flips ok" in done.stdout
