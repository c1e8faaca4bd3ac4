"""Rewrite docs/results.md's survey tables from the committed cells (scripts/survey.py):
the epoch summary between its `<!-- survey summary -->` markers (seeds 0-4), the figures of
each row between `<!-- seed spread -->` markers, wherever they are (the rows, setting | epochs |
seeds "a-b", are the doc's choice), and every per-seed table it quotes under a
`#### setting=..., epochs=...` heading.

    python scripts/survey_doc.py [--survey surveys/epochs] [--doc docs/results.md]

The prose around the tables is not touched: read it again after new cells land.
tests/test_survey.py fails when the doc and the cells disagree.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from metricad.errors import MetricadError, run_stage
from metricad.files import read_json
from metricad.report.experiments import survey_experiments
from metricad.report.render import render_benchmark_markdown, render_summary_markdown
from metricad.report.tables import benchmark_tables

SUMMARY_START, SUMMARY_END = "<!-- survey summary -->", "<!-- end of survey summary -->"
SPREAD_START, SPREAD_END = "<!-- seed spread -->", "<!-- end of seed spread -->"
ROW_PARAM = "train.seed"


def rendered_tables(survey: Path) -> dict[str, list[str]]:
    """{"setting=..., epochs=...": its per-seed table lines}, as `compare --survey` renders."""
    markdown = render_benchmark_markdown(
        benchmark_tables(survey_experiments(survey), ROW_PARAM), ROW_PARAM
    )
    tables: dict[str, list[str]] = {}
    current = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = line[3:]
            tables[current] = []
        elif current is not None and line.startswith("|"):
            tables[current].append(line)
    return tables


def spread_row(survey: Path, setting: str, epochs: int, seeds: str) -> str:
    """A row of the seed-spread table: Gaussian AUROC mean ± sd and min, softmax AUROC mean ±
    sd, mean test errors, over the cells of seeds "a-b" (sample sd)."""
    first, last = (int(seed) for seed in seeds.split("-"))
    cells = []
    for seed in range(first, last + 1):
        path = survey / setting / f"seed{seed}-{epochs}ep.json"
        if not path.exists():
            raise MetricadError(f"{path}: no such cell (the seed-spread row {setting} {seeds})")
        cells.append(read_json(path)["metrics"]["metrics/evaluate.json"])
    gaussian = [cell["scores"]["gaussian"]["auroc"] for cell in cells]
    softmax = [cell["scores"]["softmax"]["auroc"] for cell in cells]
    errors = statistics.mean(cell["test"]["errors"] for cell in cells)
    return (
        f"| {setting} | {epochs} | {seeds} "
        f"| {statistics.mean(gaussian):.4f} ± {statistics.stdev(gaussian):.4f} "
        f"| {min(gaussian):.4f} "
        f"| {statistics.mean(softmax):.4f} ± {statistics.stdev(softmax):.4f} | {errors:.1f} |"
    )


def _block(lines: list[str], start: str, end: str) -> tuple[int, int]:
    if start not in lines or end not in lines:
        raise MetricadError(f"the doc has no {start} ... {end} block")
    return lines.index(start), lines.index(end)


def refreshed(doc: str, survey: Path) -> str:
    lines = doc.splitlines()
    _block(lines, SPREAD_START, SPREAD_END)
    spread_rows = False
    for number, line in enumerate(lines):
        if line in (SPREAD_START, SPREAD_END):
            spread_rows = line == SPREAD_START
        elif spread_rows and line.startswith("|") and not line.startswith(("| setting", "|---")):
            setting, epochs, seeds = (cell.strip() for cell in line.split("|")[1:4])
            lines[number] = spread_row(survey, setting, int(epochs), seeds)
    start, end = _block(lines, SUMMARY_START, SUMMARY_END)
    summary = render_summary_markdown(
        benchmark_tables(survey_experiments(survey, range(5)), ROW_PARAM), ROW_PARAM
    )
    lines[start + 1 : end] = summary
    tables = rendered_tables(survey)
    out: list[str] = []
    quoted, written = None, set()
    for line in lines:
        if line.startswith("#"):
            quoted = line[5:] if line.startswith("#### ") else None
            if quoted is not None and quoted not in tables:
                raise MetricadError(f"the doc quotes '{quoted}', which has no cells")
        if quoted is not None and line.startswith("|"):
            if quoted not in written:  # the rendered table replaces the old lines at the first
                out.extend(tables[quoted])
                written.add(quoted)
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python scripts/survey_doc.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--survey", type=Path, default=Path("surveys/epochs"))
    parser.add_argument("--doc", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args()
    doc = args.doc.read_text(encoding="utf-8")
    new = refreshed(doc, args.survey)
    args.doc.write_text(new, encoding="utf-8")
    print(f"{args.doc}: {'rewritten' if new != doc else 'already up to date'}")


if __name__ == "__main__":
    run_stage(main)
