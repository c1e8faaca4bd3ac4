"""The report's numbers: the per-experiment table (params that differ, then the chosen
metrics) and the benchmark view (a row per value of one param, mean, sd and min)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metricad.errors import MetricadError
from metricad.report.experiments import MISSING, PARAMS_FILE, Experiment, flatten

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
            "train_and_test.accuracy",
            "train_and_test.errors",
            "train_and_test.auroc",
            "train_and_test.f1",
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


@dataclass(frozen=True)
class Row:
    source: str
    key: str
    cells: tuple[str, ...]


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


def build_table(experiments: Sequence[Experiment], digits: int = 4) -> list[Row]:
    """The report's rows: params that differ (all of them for one experiment), then the chosen
    metrics. A value an experiment lacks is an empty cell; metric floats are rounded to `digits`."""
    rows = []
    params = [flatten(experiment.params) for experiment in experiments]
    for key in _union(params):
        values = [flat.get(key, MISSING) for flat in params]
        if len(experiments) == 1 or any(value != values[0] for value in values):
            rows.append(Row(PARAMS_FILE, key, tuple(display(value) for value in values)))
    for source, path, wanted in METRIC_ROWS:
        flats = [flatten(experiment.metrics.get(path) or {}) for experiment in experiments]
        present = _union(flats)
        for prefix in wanted:
            # A key nobody has still gets its (empty) row: a missing metric is visible.
            keys = [key for key in present if key == prefix or key.startswith(f"{prefix}.")]
            for key in keys or [prefix]:
                cells = tuple(display(flat.get(key, MISSING), digits) for flat in flats)
                rows.append(Row(source, key, cells))
    return rows


# The benchmark view's columns after the image AUROC of each score: (header, file, key).
BENCHMARK_COLUMNS = (
    ("pixel AUROC", "metrics/gradcam.json", "test.pixel_auroc"),
    ("AUPRO", "metrics/gradcam.json", "test.aupro"),
    ("pointing game", "metrics/gradcam.json", "test.pointing_game"),
    ("test errors", "metrics/evaluate.json", "test.errors"),
    ("silhouette 512-d (test)", "metrics/tsne.json", "silhouette.test.embedding"),
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
    sd: tuple[float | None, ...]  # sample standard deviation (n - 1); None below two rows
    minimum: tuple[float | int | None, ...]
    counted: tuple[int, ...]  # rows with a number, per column (the mean's, sd's and min's n)


def _sd(values: Sequence[float | int]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return (sum((value - mean) ** 2 for value in values) / (len(values) - 1)) ** 0.5


def _number(value: Any) -> float | int | None:
    """A metric as a number; null, a missing key or a non-number is None."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return value if is_number and value == value else None  # NaN is no number


def _order(value: Any) -> tuple[int, float | str]:
    """Sort key of a param value: numbers by size (300 before 1000), the rest by their text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, display(value))


def benchmark_tables(experiments: Sequence[Experiment], row_param: str) -> list[BenchmarkTable]:
    """The benchmark view: per setting, one row per value of `row_param`, sorted."""
    params = [flatten(experiment.params) for experiment in experiments]
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
    # In the order of `score.scores` (the metrics file sorts its keys), then any other.
    scores: list[str] = []
    for experiment, flat in zip(experiments, params, strict=True):
        # Its key was evaluate.scores before 56a7110.
        listed = flat.get("score.scores", flat.get("evaluate.scores"))
        stored = (experiment.metrics.get(EVALUATE_FILE) or {}).get("scores") or {}
        for name in [*(listed if isinstance(listed, list) else []), *stored]:
            if name in stored and name not in scores:
                scores.append(name)
    wanted = [(f"image AUROC {name}", EVALUATE_FILE, f"scores.{name}.auroc") for name in scores]
    wanted += BENCHMARK_COLUMNS
    groups: dict[str, list[tuple[Any, str, str, list[float | int | None]]]] = {}
    group_order: dict[str, list[tuple[int, float | str]]] = {}
    for experiment, flat in zip(experiments, params, strict=True):
        setting = [flat.get(key, MISSING) for key in others]
        group = ", ".join(f"{k}={display(v)}" for k, v in zip(others, setting, strict=True))
        group_order[group] = [_order(value) for value in setting]
        metrics = {path: flatten(tree) for path, tree in experiment.metrics.items()}
        values = [_number(metrics.get(path, {}).get(key)) for _, path, key in wanted]
        value = flat.get(row_param, MISSING)
        groups.setdefault(group, []).append((value, display(value), experiment.name, values))
    tables = []
    for group in sorted(groups, key=group_order.__getitem__):
        ordered = sorted(groups[group], key=lambda member: (_order(member[0]), member[2]))
        members = [member[1:] for member in ordered]
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
                tuple(_sd(col) for col in present),
                tuple(min(col) if col else None for col in present),
                tuple(len(col) for col in present),
            )
        )
    return tables
