"""The whole benchmark, scaled down: a queued grid over two demo categories with parallel
workers (conftest's `grid`), its reports checked against `dvc exp show`. The same grid shared
with a second machine over an SSH remote: tests/test_ssh_remote.py."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import GRID_CATEGORIES, run_cmd, shown_value

pytestmark = pytest.mark.slow


def _rows(markdown: str) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """compare.md's table as (column names, {(from, key): cells})."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, body = split[0], split[2:]
    return header[2:], {(row[0], row[1]): row[2:] for row in body}


def _same(cell: str, value: object) -> bool:
    return float(cell) == round(value, 4) if isinstance(value, float) else cell == str(value)


def test_category_grid_report_has_a_row_per_category_and_matches_exp_show(grid):
    project, shown = grid["project"], grid["shown"]
    out = grid["root"] / "report"
    run_cmd(
        [sys.executable, "-m", "metricad.compare", "--rows", "data.category", "--out", str(out)],
        project,
    )
    tables = json.loads((out / "benchmark.json").read_text())
    # One setting: the grid over both categories, nothing else differing.
    assert [table["group"] for table in tables] == [""]
    grid_table = tables[0]
    assert list(grid_table["rows"]) == list(GRID_CATEGORIES)
    by_category = {
        shown_value(data, "params", "params.yaml", "data.category"): data for data in shown.values()
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
        values = [shown_value(by_category[c], "committed", path, key) for c in GRID_CATEGORIES]
        assert [grid_table["rows"][c][column] for c in GRID_CATEGORIES] == values, column
        numbers = [v for v in values if v is not None]
        assert grid_table["mean"][column] == pytest.approx(sum(numbers) / len(numbers))
    markdown = (out / "benchmark.md").read_text()
    assert markdown.count("| **mean** |") == 1 and markdown.count("| **sd** |") == 1
    for category in GRID_CATEGORIES:
        assert f"| {category} |" in markdown
    page = (out / "benchmark.html").read_text()
    assert "<script" not in page and page.count("<table>") == 1

    # The seed view of the same queue: a table per category, its one seed a row, its mean that
    # seed's figure and no sd (mean, sd and min over several seeds: tests/test_compare.py).
    run_cmd(
        [sys.executable, "-m", "metricad.compare", "--rows", "train.seed", "--out", str(out)],
        project,
    )
    tables = {table["group"]: table for table in json.loads((out / "benchmark.json").read_text())}
    assert sorted(tables) == [f"data.category={c}" for c in GRID_CATEGORIES]
    for category in GRID_CATEGORIES:
        table = tables[f"data.category={category}"]
        assert list(table["rows"]) == ["0"]
        for column, (path, key) in checked.items():
            value = shown_value(by_category[category], "committed", path, key)
            assert table["rows"]["0"][column] == value, (category, column)
            assert table["mean"][column] == value and table["sd"][column] is None, column

    # The per-experiment view of the same queue: every experiment a column, as exp show has it.
    run_cmd([sys.executable, "-m", "metricad.compare", "--out", str(out)], project)
    names, table = _rows((out / "compare.md").read_text())
    assert sorted(names) == sorted(shown)
    for source, kind, path, key in [
        ("params.yaml", "params", "params.yaml", "data.category"),
        ("evaluate", "committed", "metrics/evaluate.json", "test.accuracy"),
        ("tsne", "committed", "metrics/tsne.json", "silhouette.all.tsne_2d"),
        ("train", "committed", "metrics/train.json", "best_test_accuracy_epoch"),
    ]:
        for name, cell in zip(names, table[source, key], strict=True):
            value = shown_value(shown[name], kind, path, key)
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
            shown_value(data, "metrics", "metrics/scores/knn.json", "auroc")
            == (evaluated["scores"]["knn"]["auroc"])
        )
        # DVCLive's per-epoch log, committed with every experiment, ends at the last epoch.
        epochs = shown_value(data, "params", "params.yaml", "epochs")
        assert shown_value(data, "committed", "dvclive/metrics.json", "step") == epochs
