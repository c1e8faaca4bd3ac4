"""Rewrite docs/results.md's survey tables from the committed cells (scripts/survey.py):
the demo's (surveys/demo/) summary over every seed between `<!-- demo survey -->` markers
and its seed-spread rows between `<!-- demo spread -->` markers; the earlier 96 px demo's
(surveys/epochs/) epoch summary between `<!-- survey summary -->` markers (seeds 0-4), the
figures of each row between `<!-- seed spread -->` markers, wherever they are (the rows,
setting | epochs | seeds "a-b", are the doc's choice), every per-seed table it quotes under a
`#### setting=..., epochs=...` heading; and the real-image table between
`<!-- real images -->` markers (one row per category and setting of surveys/real/).

    python scripts/survey_doc.py [--demo surveys/demo] [--survey surveys/epochs]
        [--real surveys/real] [--doc docs/results.md]

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
DEMO_START, DEMO_END = "<!-- demo survey -->", "<!-- end of demo survey -->"
DEMO_SPREAD_START, DEMO_SPREAD_END = "<!-- demo spread -->", "<!-- end of demo spread -->"
REAL_START, REAL_END = "<!-- real images -->", "<!-- end of real images -->"
REAL_SCORES = ("softmax", "knn", "gaussian", "map", "patch")
OWN_MAPS = ("segmentation", "patch")  # the network's own heat maps
REAL_HEADER = [
    "| category | setting | epochs | seeds | image AUROC softmax | kNN | Gaussian | map | patch "
    "| verdict (score) | Grad-CAM++ pixel AUROC / AUPRO | segmentation pointing / pixel AUROC "
    "/ AUPRO | patch map pointing / pixel AUROC / AUPRO | s a cell |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
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


def _spread(values: list[float | None]) -> str:
    """mean ± sample sd (the mean alone for one value; "-" when undefined)."""
    kept = [v for v in values if v is not None]
    if not kept:
        return "-"
    if len(kept) == 1:
        return f"{kept[0]:.3f}"
    return f"{statistics.mean(kept):.3f} ± {statistics.stdev(kept):.3f}"


def _seeds(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(str(seed) for seed in seeds)


def real_rows(real: Path) -> list[str]:
    """The real-image table: per category, setting and epoch count of surveys/real/, the mean
    ± sd over its seeds of every score's image AUROC and each heat map's pixel figures."""
    rows = list(REAL_HEADER)
    for folder in sorted(p for p in real.glob("*/*") if p.is_dir()):
        cells = [read_json(path) for path in sorted(folder.glob("*.json"))]
        for epochs in sorted({cell["epochs"] for cell in cells}):
            chosen = [cell for cell in cells if cell["epochs"] == epochs]
            evaluate = [cell["metrics"]["metrics/evaluate.json"] for cell in chosen]
            cams = [cell["metrics"]["metrics/gradcam.json"] for cell in chosen]
            # Cells of code before the score section keep it under evaluate.
            cell_params = chosen[0]["params"]
            verdict = cell_params.get("score", cell_params["evaluate"])["verdict_score"]

            def auroc(name: str, evaluate=evaluate) -> str:
                return _spread([e["scores"].get(name, {}).get("auroc") for e in evaluate])

            def pixel(maps: list[dict], *keys: str) -> str:
                return " / ".join(
                    _spread([m.get("test", {}).get(key) for m in maps]) for key in keys
                )

            own = {name: [cam.get(name, {}) for cam in cams] for name in OWN_MAPS}
            rows.append(
                f"| {folder.parent.name} | {folder.name} | {epochs} "
                f"| {_seeds([cell['seed'] for cell in chosen])} "
                + "".join(f"| {auroc(name)} " for name in REAL_SCORES)
                + f"| {auroc(verdict)} ({verdict}) | {pixel(cams, 'pixel_auroc', 'aupro')} "
                + "".join(
                    f"| {pixel(own[name], 'pointing_game', 'pixel_auroc', 'aupro')} "
                    for name in OWN_MAPS
                )
                + f"| {statistics.mean(cell['seconds'] for cell in chosen):.0f} |"
            )
    return rows


def _block(lines: list[str], start: str, end: str) -> tuple[int, int]:
    if start not in lines or end not in lines:
        raise MetricadError(f"the doc has no {start} ... {end} block")
    return lines.index(start), lines.index(end)


def _refresh_spread(lines: list[str], survey: Path, start_marker: str, end_marker: str) -> None:
    """Every row between the markers (wherever they are) rewritten from `survey`'s cells."""
    _block(lines, start_marker, end_marker)
    spread_rows = False
    for number, line in enumerate(lines):
        if line in (start_marker, end_marker):
            spread_rows = line == start_marker
        elif spread_rows and line.startswith("|") and not line.startswith(("| setting", "|---")):
            setting, epochs, seeds = (cell.strip() for cell in line.split("|")[1:4])
            lines[number] = spread_row(survey, setting, int(epochs), seeds)


def refreshed(doc: str, survey: Path, real: Path, demo: Path) -> str:
    lines = doc.splitlines()
    start, end = _block(lines, REAL_START, REAL_END)
    lines[start + 1 : end] = real_rows(real)
    start, end = _block(lines, DEMO_START, DEMO_END)
    lines[start + 1 : end] = render_summary_markdown(
        benchmark_tables(survey_experiments(demo), ROW_PARAM), ROW_PARAM
    )
    _refresh_spread(lines, demo, DEMO_SPREAD_START, DEMO_SPREAD_END)
    _refresh_spread(lines, survey, SPREAD_START, SPREAD_END)
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
    parser.add_argument("--demo", type=Path, default=Path("surveys/demo"))
    parser.add_argument("--survey", type=Path, default=Path("surveys/epochs"))
    parser.add_argument("--real", type=Path, default=Path("surveys/real"))
    parser.add_argument("--doc", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args()
    doc = args.doc.read_text(encoding="utf-8")
    new = refreshed(doc, args.survey, args.real, args.demo)
    args.doc.write_text(new, encoding="utf-8")
    print(f"{args.doc}: {'rewritten' if new != doc else 'already up to date'}")


if __name__ == "__main__":
    run_stage(main)
