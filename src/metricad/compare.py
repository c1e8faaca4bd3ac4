"""Side-by-side report of DVC experiments or git revisions: the article's 300/500/1000-epoch
comparison as one table (compare.md) and one self-contained page with the maps (compare.html).

    python -m metricad.compare [EXP_OR_REV ...] [--out DIR]
    python -m metricad.compare --rows data.category [EXP_OR_REV ...] [--out DIR]
    python -m metricad.compare --survey surveys/epochs [--seeds 0 1 2] [--out DIR]

With no names it compares every finished experiment of the workspace baseline, oldest first.
`--rows PARAM` writes the benchmark view instead (benchmark.{md,html,json}): one row per value
of PARAM (one per category for a category grid, one per seed for `--rows train.seed`), the
headline metrics as columns and mean, sd and min rows; experiments that also differ in other
params get one table per combination. `--survey DIR` draws the same view from the cell files
of a survey (scripts/survey.py), one table per setting and epoch count.
Everything comes from what DVC and git already store (`dvc exp show --json`, the experiment
commits); nothing is retrained.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from metricad.errors import MetricadError, run_stage
from metricad.files import write_text
from metricad.report.experiments import (
    Experiment,
    experiments_shown,
    git_file,
    select_experiments,
    survey_experiments,
)
from metricad.report.render import (
    benchmark_json,
    render_benchmark_html,
    render_benchmark_markdown,
    render_html,
    render_markdown,
)
from metricad.report.tables import benchmark_tables, build_table

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
    parser.add_argument(
        "--survey",
        type=Path,
        metavar="DIR",
        help="benchmark view of a survey's cell files (scripts/survey.py), rows by train.seed",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, metavar="N", help="with --survey: only these seeds' cells"
    )
    args = parser.parse_args(argv)
    if args.survey:
        if args.names:
            raise MetricadError("--survey reads its cells from DIR: name no experiments")
        experiments = survey_experiments(args.survey, args.seeds)
        write_benchmark(experiments, args.rows or "train.seed", args.out)
        return
    experiments = select_experiments(args.names, experiments_shown())
    if args.rows:
        write_benchmark(experiments, args.rows, args.out)
        return
    rows = build_table(experiments)
    images = {
        path: [git_file(experiment.rev, path) for experiment in experiments] for path in IMAGES
    }
    try:
        write_text(args.out / "compare.md", render_markdown(experiments, rows))
        write_text(args.out / "compare.html", render_html(experiments, rows, images))
    except OSError as error:
        raise MetricadError(f"--out {args.out}: cannot write there ({error.strerror})") from None
    names = ", ".join(experiment.name for experiment in experiments)
    print(f"wrote {args.out / 'compare.md'} and {args.out / 'compare.html'}: {names}")


def write_benchmark(experiments: Sequence[Experiment], row_param: str, out: Path) -> None:
    tables = benchmark_tables(experiments, row_param)
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
