"""The comparison report: table building on hand-made data, and end to end on three queued
experiments (the article's epoch comparison, scaled down) checked against `dvc exp show`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from test_pipeline import TINY, _project, _run

from metricad.compare import (
    Column,
    build_table,
    experiments,
    render_html,
    render_markdown,
    select_columns,
)
from metricad.errors import MetricadError


def _column(name: str, epochs: int, accuracy: float | None) -> Column:
    evaluate = {"test": {"errors": 2}} if accuracy is None else {"test": {"accuracy": accuracy}}
    return Column(
        name,
        f"{name:0<40}",
        {"epochs": epochs, "train": {"seed": 0, "lr": 0.001}, "data": {"root": None}},
        {"metrics/evaluate.json": evaluate, "metrics/tsne.json": {}},
    )


def _rows(markdown: str) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """The Markdown table as (column names, {(from, key): cells})."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, body = split[0], split[2:]
    return header[2:], {(row[0], row[1]): row[2:] for row in body}


def test_table_shows_differing_params_and_rounded_metrics():
    columns = [_column("short", 3, 0.8666667), _column("long", 8, None)]
    rows = {(row.source, row.key): row.cells for row in build_table(columns)}
    # Only the param that differs; the equal ones are left out.
    assert [key for source, key in rows if source == "params.yaml"] == ["epochs"]
    assert rows["params.yaml", "epochs"] == ("3", "8")
    assert rows["evaluate", "test.accuracy"] == ("0.8667", "")
    assert rows["evaluate", "test.errors"] == ("", "2")
    # A metric nobody has is still a row, with empty cells.
    assert rows["tsne", "silhouette.all"] == ("", "")
    assert rows["train", "best_test_accuracy_epoch"] == ("", "")

    names, table = _rows(render_markdown(columns, build_table(columns)))
    assert names == ["short", "long"]
    assert table["evaluate", "test.accuracy"] == ["0.8667", ""]


def test_one_column_shows_every_param():
    rows = build_table([_column("only", 3, 0.5)])
    params = {row.key: row.cells for row in rows if row.source == "params.yaml"}
    assert params == {
        "epochs": ("3",),
        "train.seed": ("0",),
        "train.lr": ("0.001",),
        "data.root": ("null",),
    }


def test_html_embeds_images_and_leaves_missing_ones_empty():
    columns = [_column("a", 3, 0.5), _column("b", 5, 0.5)]
    page = render_html(columns, build_table(columns), {"plots/tsne/all.png": [b"\x89PNG", None]})
    assert page.count("data:image/png;base64,iVBORw==") == 1
    assert "<td></td>" in page
    assert "http" not in page


def test_exp_show_parsing_keeps_finished_experiments_oldest_first():
    def experiment(name: str, stamp: str, state: str | None, error: dict | None = None) -> dict:
        data = {
            "rev": name * 8,
            "timestamp": stamp,
            "params": {"params.yaml": {"data": {"epochs": len(name)}}},
            "metrics": {
                "metrics/evaluate.json": {"data": {"test": {"accuracy": 1.0}}},
                "metrics/tsne.json": {"error": {"type": "FileNotFoundError", "msg": "gone"}},
            },
        }
        revs = [{"rev": name * 8, "name": name, "data": data, "error": error, "experiments": None}]
        executor = None if state is None else {"state": state, "name": "dvc-task"}
        return {"revs": revs, "executor": executor, "name": name}

    shown = [
        {"rev": "workspace", "name": None, "data": {}, "error": None, "experiments": None},
        {
            "rev": "b" * 40,
            "name": "master",
            "error": None,
            "experiments": [
                experiment("late", "2026-01-02T00:00:00", "success"),
                experiment("early", "2026-01-01T00:00:00", None),
                experiment("waiting", "2026-01-03T00:00:00", "queued"),
                experiment("broken", "2026-01-03T00:00:00", "failed", {"msg": "failed"}),
            ],
        },
    ]
    finished, unfinished = experiments(shown)
    assert [column.name for column in finished] == ["early", "late"]
    assert finished[0].params == {"epochs": 5}
    assert set(finished[0].metrics) == {"metrics/evaluate.json"}
    assert unfinished == {"waiting": "queued", "broken": "failed"}
    with pytest.raises(MetricadError, match="experiment waiting has no results"):
        select_columns(["waiting"], shown)


def _git_dvc_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run(["dvc", "init", "-q"], repo)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], repo)
    return repo


def test_unknown_revision_is_one_line_and_exit_1(tmp_path):
    repo = _git_dvc_repo(tmp_path)
    done = _run([sys.executable, "-m", "metricad.compare", "no-such-exp"], repo, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: unknown experiment or git revision: no-such-exp"
    assert not (repo / "reports").exists()


def _wait_for_queue(project: Path, count: int, timeout_s: float) -> None:
    """Poll `dvc queue status` until `count` tasks succeeded; on a failure show its log."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = _run(["dvc", "queue", "status"], project).stdout
        # Rows: "<task> <name> <created, with a space> <status>"; then a "Worker status" line.
        tasks = {
            line.split()[1]: line.split()[-1]
            for line in status.splitlines()[1:]
            if line.strip() and not line.startswith("Worker")
        }
        failed = [name for name, state in tasks.items() if state == "Failed"]
        if failed:
            logs = _run(["dvc", "queue", "logs", failed[0]], project, check=False)
            pytest.fail(f"queued experiment {failed[0]} failed:\n{logs.stdout}\n{logs.stderr}")
        if len(tasks) == count and set(tasks.values()) == {"Success"}:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"queue not done after {timeout_s} s:\n{status}")
        time.sleep(5)  # each `dvc queue status` costs about a CPU second


def _shown_value(data: dict, path: str, key: str) -> object:
    value = data[path]["data"]
    for part in key.split("."):
        value = value[part]
    return value


def _same(cell: str, value: object) -> bool:
    return float(cell) == round(value, 4) if isinstance(value, float) else cell == str(value)


@pytest.mark.slow
def test_queued_epoch_comparison_matches_exp_show(tmp_path):
    # TINY saves a resumable state every epoch, about 5 s each on 2 cores; not needed here.
    params = json.loads(json.dumps(TINY))
    params["train"]["checkpoint_every"] = 0
    project = _project(tmp_path, params)
    _run(["dvc", "exp", "run", "--queue", "-S", "epochs=3,5,8"], project)
    try:
        # One worker per experiment: about 115 s instead of 175 s for one worker on 2 cores
        # (most of each run is DVC's and the stages' start-up); the results are the same.
        _run(["dvc", "queue", "start", "--jobs", "3"], project)
        _wait_for_queue(project, 3, timeout_s=600)
    finally:
        # No worker may outlive the test (a failure above would leave it running).
        _run(["dvc", "queue", "stop", "--kill"], project, check=False)

    out = tmp_path / "report"
    _run([sys.executable, "-m", "metricad.compare", "--out", str(out)], project)
    names, table = _rows((out / "compare.md").read_text())
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], project).stdout)
    revs = {e["name"]: e["revs"][0]["data"] for b in shown for e in b["experiments"] or []}
    assert len(names) == 3
    assert set(names) == set(revs)
    checked = [
        ("params.yaml", "params", "params.yaml", "epochs"),
        ("evaluate", "metrics", "metrics/evaluate.json", "test.accuracy"),
        ("evaluate", "metrics", "metrics/evaluate.json", "test.errors"),
        ("tsne", "metrics", "metrics/tsne.json", "silhouette.all.tsne_2d"),
        ("train", "metrics", "metrics/train.json", "best_test_accuracy_epoch"),
    ]
    for source, kind, path, key in checked:
        for name, cell in zip(names, table[source, key], strict=True):
            value = _shown_value(revs[name][kind], path, key)
            assert _same(cell, value), f"{key} of {name}: table {cell}, dvc {value}"
    assert sorted(int(cell) for cell in table["params.yaml", "epochs"]) == [3, 5, 8]

    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 * 3  # at least the t-SNE maps
    assert 'src="http' not in page

    # A plain git revision beside an experiment: read from its files, empty where it has none.
    _run([sys.executable, "-m", "metricad.compare", names[0], "HEAD", "--out", str(out)], project)
    names_two, table_two = _rows((out / "compare.md").read_text())
    assert names_two == [names[0], "HEAD"]
    assert table_two["params.yaml", "epochs"] == [table["params.yaml", "epochs"][0], "2"]
    assert table_two["evaluate", "test.accuracy"][1] == ""


def test_every_anomaly_score_is_a_row():
    """`-S split.anomalous_train_fraction=0,0.5` puts the two protocols' scores side by side."""
    scores = {
        "softmax": {"auroc": 0.61, "auroc_per_defect": {"cut": 0.5}},
        "gaussian": {"auroc": 0.93, "auroc_per_defect": {"cut": 0.9}},
    }
    columns = [_column("good-only", 300, 0.8), _column("article", 300, 0.9)]
    columns[0].metrics["metrics/evaluate.json"]["scores"] = scores
    rows = {(row.source, row.key): row.cells for row in build_table(columns)}
    assert rows["evaluate", "scores.gaussian.auroc"] == ("0.93", "")
    assert rows["evaluate", "scores.gaussian.auroc_per_defect.cut"] == ("0.9", "")
    assert rows["evaluate", "scores.softmax.auroc"] == ("0.61", "")
