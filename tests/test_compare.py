"""The comparison report and the benchmark view on hand-made data, and `dvc exp show --json`
parsing; end to end on a queued grid in tests/test_grid.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import run_cmd

from metricad.errors import MetricadError
from metricad.report.experiments import (
    METRICS_FILES,
    Experiment,
    finished_experiments,
    select_experiments,
)
from metricad.report.render import (
    benchmark_json,
    render_benchmark_html,
    render_benchmark_markdown,
    render_html,
    render_markdown,
)
from metricad.report.tables import METRIC_ROWS, benchmark_tables, build_table


def _column(name: str, epochs: int, accuracy: float | None) -> Experiment:
    evaluate = {"test": {"errors": 2}} if accuracy is None else {"test": {"accuracy": accuracy}}
    return Experiment(
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
    # The softmax figures over train + test are named so, never a bare "all" beside test.*.
    assert rows["evaluate", "train_and_test.auroc"] == ("", "")
    assert not [key for source, key in rows if source == "evaluate" and key.startswith("all.")]
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
    finished, unfinished = finished_experiments(shown)
    assert [column.name for column in finished] == ["early", "late"]
    assert finished[0].params == {"epochs": 5}
    assert set(finished[0].metrics) == {"metrics/evaluate.json"}
    assert unfinished == {"waiting": "queued", "broken": "failed"}
    with pytest.raises(MetricadError, match="experiment waiting has no results"):
        select_experiments(["waiting"], shown)


def _git_dvc_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    run_cmd(["git", "init", "-q"], repo)
    run_cmd(["dvc", "init", "-q"], repo)
    run_cmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], repo)
    return repo


def test_unknown_revision_is_one_line_and_exit_1(tmp_path):
    repo = _git_dvc_repo(tmp_path)
    done = run_cmd([sys.executable, "-m", "metricad.compare", "no-such-exp"], repo, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: unknown experiment or git revision: no-such-exp"
    assert not (repo / "reports").exists()


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


def _grid_column(name: str, category: str, epochs: int, softmax: float | None) -> Experiment:
    return Experiment(
        name,
        f"{name:0<40}",
        {"epochs": epochs, "data": {"category": category}, "train": {"seed": 0}},
        {
            "metrics/evaluate.json": {
                "test": {"errors": 3},
                "scores": {"softmax": {"auroc": softmax}, "knn": {"auroc": 0.5}},
            },
            "metrics/gradcam.json": {"test": {"pixel_auroc": 0.9, "aupro": 0.7}},
        },
    )


def test_benchmark_view_has_a_row_per_category_and_a_mean_per_setting():
    columns = [
        _grid_column("a", "leather", 300, 0.9),
        _grid_column("b", "carpet", 300, None),  # a null AUROC: left out of the mean
        _grid_column("c", "bottle", 300, 0.6),
        _grid_column("d", "leather", 500, 0.8),
    ]
    tables = benchmark_tables(columns, "data.category")
    assert [table.group for table in tables] == ["epochs=300", "epochs=500"]
    first = tables[0]
    assert first.labels == ("bottle", "carpet", "leather")
    assert first.headers[:2] == ("image AUROC softmax", "image AUROC knn")
    softmax = first.headers.index("image AUROC softmax")
    assert [row[softmax] for row in first.values] == [0.6, None, 0.9]
    assert first.mean[softmax] == pytest.approx(0.75) and first.counted[softmax] == 2
    assert first.mean[first.headers.index("test errors")] == 3
    # The pointing game is in no metrics file: an empty column, no mean.
    assert first.mean[first.headers.index("pointing game")] is None

    markdown = render_benchmark_markdown(tables, "data.category")
    assert "## epochs=300" in markdown
    assert "| **mean** | 0.75 (2/3) | 0.5 |" in markdown
    assert "| carpet |  | 0.5 |" in markdown
    page = render_benchmark_html(tables, "data.category")
    assert page.count("<table>") == 2 and "<script" not in page
    stored = json.loads(benchmark_json(tables, "data.category"))
    assert stored[0]["rows"]["carpet"]["image AUROC softmax"] is None
    assert stored[1]["rows"]["leather"]["image AUROC softmax"] == 0.8


def test_benchmark_view_names_a_repeated_value_and_refuses_an_unknown_param():
    columns = [_grid_column("x", "leather", 300, 0.9), _grid_column("y", "leather", 300, 0.7)]
    (table,) = benchmark_tables(columns, "data.category")
    assert table.labels == ("leather (x)", "leather (y)")
    with pytest.raises(MetricadError, match="--rows data.categry: no compared experiment"):
        benchmark_tables(columns, "data.categry")


def test_seed_rows_give_mean_sample_sd_and_min_per_setting():
    columns = [
        _grid_column(name, "leather", epochs, softmax)
        for name, epochs, softmax in [("a", 300, 0.9), ("b", 300, 0.7), ("c", 300, 0.8)]
    ] + [_grid_column("d", "leather", 1000, 0.6)]
    for seed, column in enumerate(columns):
        column.params["train"]["seed"] = seed % 3
    short, long = benchmark_tables(columns, "train.seed")
    assert (short.group, short.labels, long.labels) == ("epochs=300", ("0", "1", "2"), ("0",))
    softmax = short.headers.index("image AUROC softmax")
    assert short.mean[softmax] == pytest.approx(0.8)
    assert short.sd[softmax] == pytest.approx(0.1)  # n - 1: sqrt((0.01 + 0 + 0.01) / 2)
    assert short.minimum[softmax] == 0.7
    assert long.sd[softmax] is None and long.minimum[softmax] == 0.6  # one seed: no sd
    markdown = render_benchmark_markdown([short, long], "train.seed")
    assert "| **sd** | 0.1 | 0.0 |" in markdown and "| **min** | 0.7 | 0.5 |" in markdown
    # The summary first: a line per setting, mean ± sd (counts to 1 place), no sd of one seed.
    summary = markdown.split("## epochs=300")[0]
    assert "| epochs=300 | 0, 1, 2 | 0.800 ± 0.100 | 0.500 ± 0.000 |" in summary
    assert "| 3.0 ± 0.0 |" in summary
    assert "| epochs=1000 | 0 | 0.600 | 0.500 |" in summary
    stored = json.loads(benchmark_json([short, long], "train.seed"))
    assert stored[0]["sd"]["image AUROC softmax"] == pytest.approx(0.1)
    assert stored[0]["min"]["image AUROC knn"] == 0.5


def test_a_revision_report_reads_every_file_the_rows_come_from():
    assert {path for _, path, _ in METRIC_ROWS} == set(METRICS_FILES)


def _cell(folder: Path, setting: str, seed: int, epochs: int, gaussian: float) -> None:
    cell = {
        "setting": setting,
        "seed": seed,
        "epochs": epochs,
        "commit": "c" * 40,
        "metrics": {
            "metrics/evaluate.json": {"scores": {"gaussian": {"auroc": gaussian}}},
            "metrics/tsne.json": {"silhouette": {"test": {"embedding": 0.5}}},
        },
    }
    path = folder / setting / f"seed{seed}-{epochs}ep.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell), encoding="utf-8")


def test_survey_cells_give_a_table_per_setting_and_epoch_count(tmp_path):
    survey = tmp_path / "survey"
    for seed, gaussian in enumerate([0.9, 0.7]):
        _cell(survey, "article", seed, 300, gaussian)
    _cell(survey, "article", 0, 1000, 0.8)
    _cell(survey, "good-only", 0, 300, 0.95)
    (survey / ".states").mkdir()  # the runner's training states are no cells
    (survey / ".states" / "x.json").write_text("{}", encoding="utf-8")
    out = tmp_path / "out"
    done = run_cmd(
        [sys.executable, "-m", "metricad.compare", "--survey", str(survey), "--out", str(out)],
        tmp_path,
    )
    assert "3 table(s)" in done.stdout
    tables = {t["group"]: t for t in json.loads((out / "benchmark.json").read_text())}
    assert list(tables) == [
        "setting=article, epochs=300",
        "setting=article, epochs=1000",
        "setting=good-only, epochs=300",
    ]
    short = tables["setting=article, epochs=300"]
    assert list(short["rows"]) == ["0", "1"]
    assert short["mean"]["image AUROC gaussian"] == pytest.approx(0.8)
    assert short["mean"]["silhouette 512-d (test)"] == 0.5
    assert "| **sd** |" in (out / "benchmark.md").read_text()
    run_cmd(
        [sys.executable, "-m", "metricad.compare", "--survey", str(survey), "--seeds", "1"]
        + ["--out", str(out)],
        tmp_path,
    )
    only = json.loads((out / "benchmark.json").read_text())
    # One cell left: no dimension differs, so one table without a setting heading.
    assert [(t["group"], list(t["rows"])) for t in only] == [("", ["1"])]


def test_survey_refuses_a_folder_without_cells(tmp_path):
    done = run_cmd(
        [sys.executable, "-m", "metricad.compare", "--survey", str(tmp_path / "none")],
        tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: --survey ")
    assert "no cell files" in done.stderr
