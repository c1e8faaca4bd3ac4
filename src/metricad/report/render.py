"""The report's pages: Markdown, self-contained HTML (images inline) and JSON."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence

from metricad.report.experiments import MISSING, Experiment
from metricad.report.tables import BenchmarkTable, Row, display


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(experiments: Sequence[Experiment], rows: Sequence[Row]) -> str:
    """compare.md: one table, a row per value, a column per experiment; numbers only."""
    header = ["from", "key", *(experiment.name for experiment in experiments)]
    lines = [
        "# Experiment comparison",
        "",
        "Commits: "
        + ", ".join(f"{experiment.name} = `{experiment.rev[:7]}`" for experiment in experiments)
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
    experiments: Sequence[Experiment],
    rows: Sequence[Row],
    images: Mapping[str, Sequence[bytes | None]],
) -> str:
    """compare.html: the same table plus, per image path, each experiment's PNG as a data URI."""
    esc = html.escape
    width = len(experiments) + 1
    head = "".join(
        f"<th>{esc(experiment.name)}<br><code>{esc(experiment.rev[:7])}</code></th>"
        for experiment in experiments
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


def _value_cell(value: float | int | None, digits: int) -> str:
    return display(MISSING if value is None else value, digits)


def _summary_cells(
    table: BenchmarkTable, values: Sequence[float | int | None], digits: int
) -> list[str]:
    """A summary row's cells (mean, sd or min); one over fewer rows than the table says so."""
    rows = len(table.labels)
    return [
        ""
        if value is None
        else display(value if isinstance(value, int) else float(value), digits)
        + ("" if n == rows else f" ({n}/{rows})")
        for value, n in zip(values, table.counted, strict=True)
    ]


def _summaries(table: BenchmarkTable) -> tuple[tuple[str, tuple[float | int | None, ...]], ...]:
    return (("mean", table.mean), ("sd", table.sd), ("min", table.minimum))


def _mean_sd_cell(table: BenchmarkTable, column: int) -> str:
    """ "mean ± sd" of one column: 3 decimals, 1 for counts; a column with a number in fewer
    rows than the table has says so."""
    mean, sd, n = table.mean[column], table.sd[column], table.counted[column]
    if mean is None:
        return ""
    is_count = all(isinstance(row[column], int) for row in table.values if row[column] is not None)
    places = 1 if is_count else 3
    text = f"{mean:.{places}f}" + ("" if sd is None else f" ± {sd:.{places}f}")
    return text + ("" if n == len(table.labels) else f" ({n}/{len(table.labels)})")


def render_summary_markdown(tables: Sequence[BenchmarkTable], row_param: str) -> list[str]:
    """One line per setting: mean ± sd of every column over its rows (the survey's answer)."""
    headers = tables[0].headers
    lines = [
        "| setting | " + row_param + " | " + " | ".join(headers) + " |",
        "|---|---" + "|---:" * len(headers) + "|",
    ]
    for table in tables:
        cells = [_mean_sd_cell(table, column) for column in range(len(headers))]
        labels = _markdown_cell(", ".join(table.labels))
        lines.append(f"| {_markdown_cell(table.group)} | {labels} | " + " | ".join(cells) + " |")
    return lines


def render_benchmark_markdown(
    tables: Sequence[BenchmarkTable], row_param: str, digits: int = 4
) -> str:
    """benchmark.md: per setting, a row per value of `row_param` and a mean row; first, when
    there are several settings with the same columns, a summary line per setting."""
    lines = ["# Benchmark", ""]
    if len(tables) > 1 and len({table.headers for table in tables}) == 1:
        lines += ["## Summary: mean ± sd over " + row_param, ""]
        lines += [*render_summary_markdown(tables, row_param), ""]
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
        for name, values in _summaries(table):
            cells = _summary_cells(table, values, digits)
            lines.append(f"| **{name}** | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "sd is the sample standard deviation (n - 1). A summary over fewer rows than the table "
        "has says so: (rows with a number/rows)."
    )
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
        body += [
            f"<tr><th>{name}</th>"
            + "".join(
                f'<td class="num"><b>{esc(c)}</b></td>'
                for c in _summary_cells(table, values, digits)
            )
            + "</tr>"
            for name, values in _summaries(table)
        ]
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
                    **{
                        name: dict(zip(table.headers, values, strict=True))
                        for name, values in _summaries(table)
                    },
                }
                for table in tables
            ],
            indent=2,
        )
        + "\n"
    )
