"""Side-by-side report of DVC experiments or git revisions: the article's 300/500/1000-epoch
comparison as one table (compare.md) and one self-contained page with the maps (compare.html).

    python -m metricad.compare [EXP_OR_REV ...] [--out DIR]
    python -m metricad.compare --rows data.category [EXP_OR_REV ...] [--out DIR]

With no names it compares every finished experiment of the workspace baseline, oldest first.
`--rows PARAM` writes the benchmark view instead (benchmark.{md,html,json}): one row per value
of PARAM (one per category for a category grid), the headline metrics as columns and a mean
row; experiments that also differ in other params get one table per combination.
Everything comes from what DVC and git already store (`dvc exp show --json`, the experiment
commits); nothing is retrained.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from metricad.errors import MetricadError, run_stage
from metricad.files import write_text

PARAMS_FILE = "params.yaml"
# (row label, metrics file, keys): a key also selects everything below it ("test.kinds").
METRIC_ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "evaluate",
        "metrics/evaluate.json",
        (
            "test.accuracy",
            "test.errors",
            "test.auroc",
            "test.f1",
            "test.precision",
            "test.recall",
            "test.specificity",
            "test.recall_per_defect",
            "scores",
            "score_settings",
            "all.accuracy",
            "all.errors",
            "all.auroc",
            "all.f1",
        ),
    ),
    (
        "tsne",
        "metrics/tsne.json",
        ("silhouette.train", "silhouette.test", "silhouette.all", "synthetic"),
    ),
    (
        "gradcam",
        "metrics/gradcam.json",
        (
            "test.pointing_game",
            "test.pixel_auroc",
            "test.aupro",
            "test.iou",
            "test.inside_outside_ratio",
            "test.kinds",
            "train.pointing_game",
            "train.pixel_auroc",
            "train.aupro",
            "train.iou",
        ),
    ),
    (
        "train",
        "metrics/train.json",
        (
            "epochs",
            "n_train",
            "n_train_anomalous",
            "best_test_accuracy",
            "best_test_accuracy_epoch",
            "test_accuracy",
            "train_accuracy",
            "test_loss",
            "train_loss",
            "head_scale",
        ),
    ),
)
IMAGES = (
    "plots/tsne/train.png",
    "plots/tsne/test.png",
    "plots/tsne/all.png",
    "plots/synthetic/examples.png",
    "plots/gradcam/kinds/correct.png",
    "plots/gradcam/kinds/inverted.png",
    "plots/gradcam/kinds/near_miss.png",
    "plots/gradcam/kinds/no_response.png",
)
MISSING = object()


@dataclass(frozen=True)
class Column:
    """One experiment or revision: its params and metrics as stored (nested, per file)."""

    name: str
    rev: str
    params: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Row:
    source: str
    key: str
    cells: tuple[str, ...]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"seed": 0}} -> {"train.seed": 0}; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def display(value: Any, digits: int | None = None) -> str:
    """A cell's text: floats rounded to `digits` when given, YAML spelling for null/bools."""
    if value is MISSING:
        return ""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and digits is not None:
        return repr(round(value, digits))
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _union(flats: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for flat in flats:
        keys.update(dict.fromkeys(flat))
    return list(keys)


def build_table(columns: Sequence[Column], digits: int = 4) -> list[Row]:
    """The report's rows: params that differ (all of them for one column), then the chosen
    metrics. A value a column lacks is an empty cell; metric floats are rounded to `digits`."""
    rows = []
    params = [flatten(column.params) for column in columns]
    for key in _union(params):
        values = [flat.get(key, MISSING) for flat in params]
        if len(columns) == 1 or any(value != values[0] for value in values):
            rows.append(Row(PARAMS_FILE, key, tuple(display(value) for value in values)))
    for source, path, wanted in METRIC_ROWS:
        flats = [flatten(column.metrics.get(path) or {}) for column in columns]
        present = _union(flats)
        for prefix in wanted:
            # A key nobody has still gets its (empty) row: a missing metric is visible.
            keys = [key for key in present if key == prefix or key.startswith(f"{prefix}.")]
            for key in keys or [prefix]:
                cells = tuple(display(flat.get(key, MISSING), digits) for flat in flats)
                rows.append(Row(source, key, cells))
    return rows


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(columns: Sequence[Column], rows: Sequence[Row]) -> str:
    """compare.md: one table, a row per value, a column per experiment; numbers only."""
    header = ["from", "key", *(column.name for column in columns)]
    lines = [
        "# Experiment comparison",
        "",
        "Commits: "
        + ", ".join(f"{column.name} = `{column.rev[:7]}`" for column in columns)
        + ". The t-SNE maps and GradCAM galleries are in compare.html.",
        "",
        "| " + " | ".join(map(_markdown_cell, header)) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [row.source, row.key, *row.cells]
        lines.append("| " + " | ".join(map(_markdown_cell, cells)) + " |")
    return "\n".join(lines) + "\n"


CSS = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.section th { background: #eee; text-align: left; }
td img { max-width: 480px; display: block; }
code { font-size: 90%; }
"""


def render_html(
    columns: Sequence[Column],
    rows: Sequence[Row],
    images: Mapping[str, Sequence[bytes | None]],
) -> str:
    """compare.html: the same table plus, per image path, each column's PNG as a data URI."""
    esc = html.escape
    width = len(columns) + 1
    head = "".join(
        f"<th>{esc(column.name)}<br><code>{esc(column.rev[:7])}</code></th>" for column in columns
    )
    body = []
    source = None
    for row in rows:
        if row.source != source:
            source = row.source
            body.append(f'<tr class="section"><th colspan="{width}">{esc(source)}</th></tr>')
        cells = "".join(f'<td class="num">{esc(cell)}</td>' for cell in row.cells)
        body.append(f"<tr><th>{esc(row.key)}</th>{cells}</tr>")
    body.append(f'<tr class="section"><th colspan="{width}">plots</th></tr>')
    for path, pngs in images.items():
        cells = "".join(
            "<td></td>"
            if png is None
            else f'<td><img alt="{esc(path)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}"></td>'
            for png in pngs
        )
        body.append(f"<tr><th>{esc(path)}</th>{cells}</tr>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Experiment comparison</title>'
        f"<style>{CSS}</style></head><body>\n<h1>Experiment comparison</h1>\n"
        f"<table>\n<tr><th></th>{head}</tr>\n" + "\n".join(body) + "\n</table>\n</body></html>\n"
    )


# The benchmark view's columns after the image AUROC of each score: (header, file, key).
BENCHMARK_COLUMNS = (
    ("pixel AUROC", "metrics/gradcam.json", "test.pixel_auroc"),
    ("AUPRO", "metrics/gradcam.json", "test.aupro"),
    ("pointing game", "metrics/gradcam.json", "test.pointing_game"),
    ("test errors", "metrics/evaluate.json", "test.errors"),
)
EVALUATE_FILE = "metrics/evaluate.json"


@dataclass(frozen=True)
class BenchmarkTable:
    """Rows of one setting (`group`: the other params that differ, "" when none)."""

    group: str
    headers: tuple[str, ...]
    labels: tuple[str, ...]
    values: tuple[tuple[float | int | None, ...], ...]
    mean: tuple[float | None, ...]
    counted: tuple[int, ...]  # rows with a number, per column (the mean's n)


def _number(value: Any) -> float | int | None:
    """A metric as a number; null, a missing key or a non-number is None."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return value if is_number and value == value else None  # NaN is no number


def benchmark_tables(columns: Sequence[Column], row_param: str) -> list[BenchmarkTable]:
    """The benchmark view: per setting, one row per value of `row_param`, sorted."""
    params = [flatten(column.params) for column in columns]
    if not any(row_param in flat for flat in params):
        known = ", ".join(sorted(_union(params))[:8])
        raise MetricadError(
            f"--rows {row_param}: no compared experiment has this param (params: {known}, ...)"
        )
    others = [
        key
        for key in _union(params)
        if key != row_param and len({json.dumps(flat.get(key)) for flat in params}) > 1
    ]
    # In the order of `evaluate.scores` (the metrics file sorts its keys), then any other.
    scores: list[str] = []
    for column, flat in zip(columns, params, strict=True):
        listed = flat.get("evaluate.scores")
        stored = (column.metrics.get(EVALUATE_FILE) or {}).get("scores") or {}
        for name in [*(listed if isinstance(listed, list) else []), *stored]:
            if name in stored and name not in scores:
                scores.append(name)
    wanted = [(f"image AUROC {name}", EVALUATE_FILE, f"scores.{name}.auroc") for name in scores]
    wanted += BENCHMARK_COLUMNS
    groups: dict[str, list[tuple[str, str, list[float | int | None]]]] = {}
    for column, flat in zip(columns, params, strict=True):
        group = ", ".join(f"{key}={display(flat.get(key, MISSING))}" for key in others)
        metrics = {path: flatten(tree) for path, tree in column.metrics.items()}
        values = [_number(metrics.get(path, {}).get(key)) for _, path, key in wanted]
        label = display(flat.get(row_param, MISSING))
        groups.setdefault(group, []).append((label, column.name, values))
    tables = []
    for group, members in sorted(groups.items()):
        members.sort(key=lambda member: (member[0], member[1]))
        labels = [label for label, _, _ in members]
        # The same value twice in one setting (a repeated run): name the experiment too.
        labels = [
            f"{label} ({name})" if labels.count(label) > 1 else label
            for label, (_, name, _) in zip(labels, members, strict=True)
        ]
        values = [tuple(member[2]) for member in members]
        present = [[row[i] for row in values if row[i] is not None] for i in range(len(wanted))]
        tables.append(
            BenchmarkTable(
                group,
                tuple(header for header, _, _ in wanted),
                tuple(labels),
                tuple(values),
                tuple(sum(col) / len(col) if col else None for col in present),
                tuple(len(col) for col in present),
            )
        )
    return tables


def _value_cell(value: float | int | None, digits: int) -> str:
    return display(MISSING if value is None else value, digits)


def _mean_cells(table: BenchmarkTable, digits: int) -> list[str]:
    rows = len(table.labels)
    return [
        ""
        if mean is None
        else display(float(mean), digits) + ("" if n == rows else f" ({n}/{rows})")
        for mean, n in zip(table.mean, table.counted, strict=True)
    ]


def render_benchmark_markdown(
    tables: Sequence[BenchmarkTable], row_param: str, digits: int = 4
) -> str:
    """benchmark.md: per setting, a row per value of `row_param` and a mean row."""
    lines = ["# Benchmark", ""]
    for table in tables:
        if table.group:
            lines += [f"## {table.group}", ""]
        header = [row_param, *table.headers]
        lines += ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(table.headers) + "|"]
        for label, values in zip(table.labels, table.values, strict=True):
            cells = [
                _markdown_cell(label),
                *(_value_cell(value, digits) for value in values),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("| **mean** | " + " | ".join(_mean_cells(table, digits)) + " |")
        lines.append("")
    lines.append("A mean over fewer rows than the table has says so: (rows with a number/rows).")
    return "\n".join(lines) + "\n"


def render_benchmark_html(tables: Sequence[BenchmarkTable], row_param: str, digits: int = 4) -> str:
    """benchmark.html: the same tables as one self-contained page."""
    esc = html.escape
    parts = []
    for table in tables:
        if table.group:
            parts.append(f"<h2>{esc(table.group)}</h2>")
        head = "".join(f"<th>{esc(h)}</th>" for h in (row_param, *table.headers))
        body = [
            f"<tr><th>{esc(label)}</th>"
            + "".join(f'<td class="num">{esc(_value_cell(value, digits))}</td>' for value in values)
            + "</tr>"
            for label, values in zip(table.labels, table.values, strict=True)
        ]
        body.append(
            "<tr><th>mean</th>"
            + "".join(f'<td class="num"><b>{esc(c)}</b></td>' for c in _mean_cells(table, digits))
            + "</tr>"
        )
        parts.append(f"<table>\n<tr>{head}</tr>\n" + "\n".join(body) + "\n</table>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Benchmark</title>'
        f"<style>{CSS}</style></head><body>\n<h1>Benchmark</h1>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def benchmark_json(tables: Sequence[BenchmarkTable], row_param: str) -> str:
    """benchmark.json: the unrounded numbers, for scripts and tests."""
    return (
        json.dumps(
            [
                {
                    "group": table.group,
                    "rows_by": row_param,
                    "columns": list(table.headers),
                    "rows": {
                        label: dict(zip(table.headers, values, strict=True))
                        for label, values in zip(table.labels, table.values, strict=True)
                    },
                    "mean": dict(zip(table.headers, table.mean, strict=True)),
                }
                for table in tables
            ],
            indent=2,
        )
        + "\n"
    )


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), capture_output=True, check=False)


def _git_file(rev: str, path: str) -> bytes | None:
    """A file's bytes at a commit, or None where that commit has no such file."""
    done = _run(["git", "cat-file", "blob", f"{rev}:{path}"])
    return done.stdout if done.returncode == 0 else None


def _experiments_shown() -> list[dict[str, Any]]:
    # Through this interpreter's dvc, so the report works without the venv on PATH.
    done = _run([sys.executable, "-m", "dvc", "exp", "show", "--json"])
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        raise MetricadError(f"dvc exp show failed: {message[-1]}")
    return json.loads(done.stdout)


def _stored(files: Mapping[str, Any]) -> dict[str, Any]:
    # exp show stores each file as {"data": ...} or, when unreadable, {"error": ...}.
    return {path: entry["data"] for path, entry in files.items() if "data" in entry}


def experiments(shown: Sequence[Mapping[str, Any]]) -> tuple[list[Column], dict[str, str]]:
    """Columns for the finished experiments of `dvc exp show --json`'s baselines, oldest
    first, and {name: state} for the queued, running or failed ones (they have no results)."""
    finished = []
    unfinished = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            rev = experiment["revs"][0]
            executor = experiment.get("executor") or {}
            state = executor.get("state", "success")
            if state != "success" or rev.get("error"):
                unfinished[experiment["name"]] = "failed" if rev.get("error") else state
                continue
            data = rev["data"]
            column = Column(
                experiment["name"],
                rev["rev"],
                _stored(data["params"]).get(PARAMS_FILE, {}),
                _stored(data["metrics"]),
            )
            finished.append((data.get("timestamp") or "", column))
    finished.sort(key=lambda pair: pair[0])
    return [column for _, column in finished], unfinished


def _parse_file(rev: str, path: str, raw: bytes) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(raw) if path.endswith(".yaml") else json.loads(raw)
    except (yaml.YAMLError, ValueError) as error:
        raise MetricadError(f"{rev}:{path} is not valid: {error}".splitlines()[0]) from None
    if not isinstance(tree, dict):
        raise MetricadError(f"{rev}:{path} is not a mapping of names to values")
    return tree


def revision_column(name: str) -> Column | None:
    """A column from the files committed at a git revision (or an experiment ref of any
    baseline, by name), or None if `name` is neither."""
    refs = _run(["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps/"])
    # Experiment refs are refs/exps/<2 hex>/<38 hex>/<name>; others (the queue's stash) are not.
    matches = []
    for line in refs.stdout.decode().splitlines():
        sha, ref = line.split(" ", 1)
        parts = ref.split("/")
        if len(parts) == 5 and parts[4] == name:
            matches.append(sha)
    if len(matches) > 1:
        raise MetricadError(f"experiment name {name} is ambiguous: use its commit")
    if matches:
        sha = matches[0]
    else:
        done = _run(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"]
        )
        if done.returncode != 0:
            return None
        sha = done.stdout.decode().strip()
    files = {}
    for path in (PARAMS_FILE, *(path for _, path, _ in METRIC_ROWS)):
        raw = _git_file(sha, path)
        if raw is not None:
            files[path] = _parse_file(name, path, raw)
    return Column(name, sha, files.pop(PARAMS_FILE, None) or {}, files)


def select_columns(names: Sequence[str], shown: Sequence[Mapping[str, Any]]) -> list[Column]:
    """The columns the user asked for: experiment names first, then git revisions; none
    asked for means every finished experiment."""
    finished, unfinished = experiments(shown)
    if not names:
        if not finished:
            raise MetricadError(
                "no finished experiments of this commit: run `dvc exp run` or name revisions"
            )
        return finished
    by_name = {column.name: column for column in finished}
    columns = []
    for name in names:
        if name in unfinished:
            raise MetricadError(f"experiment {name} has no results (it is {unfinished[name]})")
        column = by_name.get(name) or revision_column(name)
        if column is None:
            raise MetricadError(f"unknown experiment or git revision: {name}")
        columns.append(column)
    return columns


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m metricad.compare",
        description="Compare DVC experiments or git revisions in DIR/compare.{md,html}.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="EXP_OR_REV",
        help="experiment names or git revisions (default: all experiments of the baseline)",
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR")
    parser.add_argument(
        "--rows",
        metavar="PARAM",
        help="benchmark view: a row per value of this param (e.g. data.category) and a mean",
    )
    args = parser.parse_args(argv)
    columns = select_columns(args.names, _experiments_shown())
    if args.rows:
        write_benchmark(columns, args.rows, args.out)
        return
    rows = build_table(columns)
    images = {path: [_git_file(column.rev, path) for column in columns] for path in IMAGES}
    try:
        write_text(args.out / "compare.md", render_markdown(columns, rows))
        write_text(args.out / "compare.html", render_html(columns, rows, images))
    except OSError as error:
        raise MetricadError(f"--out {args.out}: cannot write there ({error.strerror})") from None
    names = ", ".join(column.name for column in columns)
    print(f"wrote {args.out / 'compare.md'} and {args.out / 'compare.html'}: {names}")


def write_benchmark(columns: Sequence[Column], row_param: str, out: Path) -> None:
    tables = benchmark_tables(columns, row_param)
    files = {
        "benchmark.md": render_benchmark_markdown(tables, row_param),
        "benchmark.html": render_benchmark_html(tables, row_param),
        "benchmark.json": benchmark_json(tables, row_param),
    }
    try:
        for name, text in files.items():
            write_text(out / name, text)
    except OSError as error:
        raise MetricadError(f"--out {out}: cannot write there ({error.strerror})") from None
    rows = sum(len(table.labels) for table in tables)
    print(f"wrote {out / 'benchmark.md'}, .html and .json: {rows} rows in {len(tables)} table(s)")


if __name__ == "__main__":
    run_stage(main)
