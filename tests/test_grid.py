"""The whole benchmark, scaled down: a queued grid over two demo categories (and one of them at a
second seed) with parallel workers, its reports checked against `dvc exp show`. The grid split
over two machines, sharing a git and a DVC remote: tests/test_ssh_remote.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY, make_project, run_cmd, shown_experiments, venv_env

pytestmark = pytest.mark.slow

# leather, the default, runs in every other end-to-end test.
CATEGORIES = ("bottle", "carpet")


def _start_workers(project: Path, log: Path) -> None:
    """`dvc queue start`, its output to a file: the workers it spawns inherit the command's
    stdout, so with captured pipes it would return only when the last worker exits."""
    with log.open("a", encoding="utf-8") as out:
        subprocess.run(
            ["dvc", "queue", "start", "--jobs", "2"],
            cwd=project,
            env=venv_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=True,
        )


def _queue_report(project: Path, status: str) -> str:
    """The queue's status and every worker's log, for a failure message."""
    logs = sorted((project / ".dvc" / "tmp" / "exps" / "celery").glob("*.out"))
    return status + "".join(f"\n--- {log.name}:\n{log.read_text()[-3000:]}" for log in logs)


def _wait_for_queue(project: Path, count: int, log: Path, timeout_s: float) -> None:
    """Poll `dvc queue status` until `count` tasks succeeded; on a failure show its log.

    Workers that stop while tasks are still queued (treeverse/dvc#10562) are started again,
    once no worker has been seen for 30 s (a worker just spawned takes seconds to show)."""
    deadline = time.monotonic() + timeout_s
    workers_seen = time.monotonic()
    while True:
        status = run_cmd(["dvc", "queue", "status"], project).stdout
        # Rows: "<task> <name> <created, with a space> <status>"; then "Worker status: N active,
        # M idle".
        lines = [line for line in status.splitlines()[1:] if line.strip()]
        tasks = {
            line.split()[1]: line.split()[-1] for line in lines if not line.startswith("Worker")
        }
        failed = [name for name, state in tasks.items() if state == "Failed"]
        if failed:
            logs = run_cmd(["dvc", "queue", "logs", failed[0]], project, check=False)
            pytest.fail(f"queued experiment {failed[0]} failed:\n{logs.stdout}\n{logs.stderr}")
        if len(tasks) == count and set(tasks.values()) == {"Success"}:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"queue not done after {timeout_s} s:\n{_queue_report(project, status)}")
        if "Worker status: 0 active, 0 idle" not in status:
            workers_seen = time.monotonic()
        elif "Queued" in tasks.values() and time.monotonic() - workers_seen > 30:
            _start_workers(project, log)
            workers_seen = time.monotonic()
        time.sleep(5)  # each `dvc queue status` costs about a CPU second


def _value(data: dict, kind: str, path: str, key: str) -> object:
    value = data[kind][path]["data"]
    for part in key.split("."):
        value = value[part]
    return value


def _rows(markdown: str) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """compare.md's table as (column names, {(from, key): cells})."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, body = split[0], split[2:]
    return header[2:], {(row[0], row[1]): row[2:] for row in body}


def _same(cell: str, value: object) -> bool:
    return float(cell) == round(value, 4) if isinstance(value, float) else cell == str(value)


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> dict:
    """The grid queued in the base project: both categories at seed 0 and carpet at seed 1, run
    by two workers."""
    root = tmp_path_factory.mktemp("grid")
    project = make_project(root, TINY)
    categories = ",".join(CATEGORIES)
    run_cmd(["dvc", "exp", "run", "--queue", "-S", f"data.category={categories}"], project)
    # carpet at a second seed
    run_cmd(
        ["dvc", "exp", "run", "--queue", "-S", "data.category=carpet", "-S", "train.seed=1"],
        project,
    )
    try:
        _start_workers(project, root / "queue-start.log")
        _wait_for_queue(project, 3, root / "queue-start.log", timeout_s=900)
    finally:
        # No worker may outlive the tests (a failure above would leave it running).
        run_cmd(["dvc", "queue", "stop", "--kill"], project, check=False)
    shown = shown_experiments(project)
    return {
        "root": root,
        "project": project,
        "shown": shown,
    }


def test_category_grid_report_has_a_row_per_category_and_matches_exp_show(grid):
    project, shown = grid["project"], grid["shown"]
    out = grid["root"] / "report"
    run_cmd(
        [sys.executable, "-m", "metricad.compare", "--rows", "data.category", "--out", str(out)],
        project,
    )
    tables = json.loads((out / "benchmark.json").read_text())
    # Two settings: the grid over both categories at seed 0, and carpet at seed 1.
    assert [table["group"] for table in tables] == ["train.seed=0", "train.seed=1"]
    grid_table = tables[0]
    assert list(grid_table["rows"]) == list(CATEGORIES)
    by_category = {
        _value(data, "params", "params.yaml", "data.category"): data
        for data in shown.values()
        if _value(data, "params", "params.yaml", "train.seed") == 0
    }
    checked = {
        "image AUROC softmax": ("metrics/evaluate.json", "scores.softmax.auroc"),
        "image AUROC knn": ("metrics/evaluate.json", "scores.knn.auroc"),
        "image AUROC gaussian": ("metrics/evaluate.json", "scores.gaussian.auroc"),
        "pixel AUROC": ("metrics/gradcam.json", "test.pixel_auroc"),
        "AUPRO": ("metrics/gradcam.json", "test.aupro"),
        "pointing game": ("metrics/gradcam.json", "test.pointing_game"),
        "test errors": ("metrics/evaluate.json", "test.errors"),
        "silhouette 512-d (test)": ("metrics/tsne.json", "silhouette.test.embedding"),
    }
    assert set(grid_table["columns"]) == set(checked)
    for column, (path, key) in checked.items():
        values = [_value(by_category[c], "committed", path, key) for c in CATEGORIES]
        assert [grid_table["rows"][c][column] for c in CATEGORIES] == values, column
        numbers = [v for v in values if v is not None]
        assert grid_table["mean"][column] == pytest.approx(sum(numbers) / len(numbers))
    markdown = (out / "benchmark.md").read_text()
    assert markdown.count("| **mean** |") == 2 and markdown.count("| **sd** |") == 2
    for category in CATEGORIES:
        assert f"| {category} |" in markdown
    page = (out / "benchmark.html").read_text()
    assert "<script" not in page and page.count("<table>") == 2

    # The seed view of the same queue: a table per category, mean, sd and min over the seeds.
    run_cmd(
        [sys.executable, "-m", "metricad.compare", "--rows", "train.seed", "--out", str(out)],
        project,
    )
    tables = {table["group"]: table for table in json.loads((out / "benchmark.json").read_text())}
    assert sorted(tables) == [f"data.category={c}" for c in CATEGORIES]
    carpet = tables["data.category=carpet"]
    assert list(carpet["rows"]) == ["0", "1"]
    by_seed = {
        _value(data, "params", "params.yaml", "train.seed"): data
        for data in shown.values()
        if _value(data, "params", "params.yaml", "data.category") == "carpet"
    }
    for column, (path, key) in checked.items():
        values = [_value(by_seed[seed], "committed", path, key) for seed in (0, 1)]
        assert [carpet["rows"][str(seed)][column] for seed in (0, 1)] == values, column
        if None in values:
            continue
        assert carpet["mean"][column] == pytest.approx(sum(values) / 2)
        assert carpet["sd"][column] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
        assert carpet["min"][column] == min(values)
    assert tables["data.category=bottle"]["sd"]["AUPRO"] is None  # one seed: no sd

    # The per-experiment view of the same queue: every experiment a column, as exp show has it.
    run_cmd([sys.executable, "-m", "metricad.compare", "--out", str(out)], project)
    names, table = _rows((out / "compare.md").read_text())
    assert sorted(names) == sorted(shown)
    for source, kind, path, key in [
        ("params.yaml", "params", "params.yaml", "train.seed"),
        ("params.yaml", "params", "params.yaml", "data.category"),
        ("evaluate", "committed", "metrics/evaluate.json", "test.accuracy"),
        ("tsne", "committed", "metrics/tsne.json", "silhouette.all.tsne_2d"),
        ("train", "committed", "metrics/train.json", "best_test_accuracy_epoch"),
    ]:
        for name, cell in zip(names, table[source, key], strict=True):
            value = _value(shown[name], kind, path, key)
            assert _same(cell, value), f"{key} of {name}: table {cell}, dvc {value}"
    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") >= len(shown) * 3  # the t-SNE maps at least
    assert 'src="http' not in page

    for data in shown.values():
        # exp show (like `dvc metrics show`) has the headline files only: a score or map each.
        assert data["metrics"] and all(
            path.startswith(("metrics/scores/", "metrics/maps/")) for path in data["metrics"]
        ), sorted(data["metrics"])
        evaluated = data["committed"]["metrics/evaluate.json"]["data"]
        assert (
            _value(data, "metrics", "metrics/scores/knn.json", "auroc")
            == (evaluated["scores"]["knn"]["auroc"])
        )
        # DVCLive's per-epoch log, committed with every experiment, ends at the last epoch.
        epochs = _value(data, "params", "params.yaml", "epochs")
        assert _value(data, "committed", "dvclive/metrics.json", "step") == epochs
