"""The registries (sources, scores, CAM methods) name what the params schema names, and adding
a score is one file plus one name: docs/architecture.md's worked example, run as written."""

from __future__ import annotations

import json
import re
import shutil
import typing

import pytest
import yaml
from helpers import REPO, run_cmd

from metricad.analysis.cams import CAMS
from metricad.data.sources import SOURCES
from metricad.params import CamMethod, ScoreName, SourceName
from metricad.scoring import SCORES


def test_every_registry_holds_what_the_params_schema_names():
    for registry, schema in ((SOURCES, SourceName), (SCORES, ScoreName), (CAMS, CamMethod)):
        registry.check_names(schema)
        assert registry.names() == sorted(typing.get_args(schema))


def _worked_example() -> tuple[str, str]:
    """The new score's file and its ScoreName line, from docs/architecture.md."""
    page = (REPO / "docs" / "architecture.md").read_text()
    section = page.split("## Worked example: a new score", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return blocks[0], blocks[1].strip()


@pytest.mark.slow
def test_a_new_score_is_one_file_and_one_name(tiny_run, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(tiny_run["project"], project, symlinks=True)
    code, schema_line = _worked_example()
    (project / "src/metricad/scoring/centroid.py").write_text(code)
    params_py = project / "src/metricad/params.py"
    old = re.search(r"^ScoreName = .*$", params_py.read_text(), flags=re.M).group(0)
    params_py.write_text(params_py.read_text().replace(old, schema_line))
    params_yaml = project / "params.yaml"
    params = yaml.safe_load(params_yaml.read_text())
    params["evaluate"]["scores"].append("centroid")
    params_yaml.write_text(yaml.safe_dump(params, sort_keys=False))
    # Only the scores' stages: the rest would rerun too (params.py is every stage's code).
    # The copy's own library, not the one the test environment has installed.
    env = {"PYTHONPATH": str(project / "src")}
    run_cmd(["dvc", "repro", "--single-item", "score"], project, env=env)
    run_cmd(["dvc", "repro", "--single-item", "evaluate"], project, env=env)
    evaluate = json.loads((project / "metrics/evaluate.json").read_text())
    assert set(evaluate["scores"]) == {"softmax", "knn", "gaussian", "centroid"}
    assert isinstance(evaluate["scores"]["centroid"]["auroc"], float)
    assert set(evaluate["scores"]["centroid"]["auroc_per_defect"]) == set(
        evaluate["scores"]["knn"]["auroc_per_defect"]
    )
    assert isinstance(evaluate["operating_points"]["centroid"]["threshold"], float)
