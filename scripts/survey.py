"""A survey over seeds, settings and epoch counts that resumes: the pipeline itself
(`dvc repro`) once per cell, each finished cell written to its own committed file.

    python scripts/survey.py [--out surveys/demo] [--settings article article-recipe good-only]
        [--seeds 0 1 2 3 4] [--epochs 300 500 1000]
    python scripts/survey.py --category bottle --settings real --seeds 0 1 2 --epochs 150
    python -m metricad.compare --survey surveys/demo --rows train.seed   # the table

The demo's cells go to surveys/demo/; surveys/epochs/ holds the cells of the earlier demo
(96 px, defects of the default size, 300 epochs: the committed params of their commits),
kept with the findings made on them (docs/results.md).

`--category NAME` runs a real MVTec AD category from `--root` (../shared/realdata: bottle,
screw) instead of the demo, its cells under surveys/real/<category>/.

A cell is (setting, seed, epoch count): the committed params.yaml with the setting's
overrides, `train.seed` and `epochs`, run with `dvc repro`; its file
`<out>/<setting>/seed<seed>-<epochs>ep.json` holds the params it ran with, the four metrics
files, the md5 of the trained model (from dvc.lock), the commit and the machine. A rerun skips
every cell whose file exists, so the survey stops and resumes anywhere; the golden test
(tests/test_golden.py) makes cells from different sittings and machines the same bytes.

The cells run by epoch count (every 300-epoch cell first, so the first figures come early).
When the recipe's learning rate does not depend on the epoch count, a longer cell continues
the shorter cell's training state (kept in <out>/.states/, not committed) instead of
training from scratch: the `train` stage resumes from it, and the result is the same bytes as
a fresh run (tests/test_training.py). So 300, 500 and 1000 epochs cost 1000 epochs per seed.

Run it from a separate clone of the commit it measures, so edits to the working tree cannot
leak into it: `git clone . /tmp/survey && cd /tmp/survey && make venv && python scripts/survey.py`.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from survey_settings import SETTINGS, cell_params  # the settings every script shares

from metricad.errors import MetricadError, run_stage
from metricad.files import read_json, write_json
from metricad.paths import TRAIN_STATE
from metricad.report.experiments import METRICS_FILES

# Code and config whose change makes a cell another measurement.
MEASURED = ("src", "stages", "dvc.yaml", "pyproject.toml")


def data_overrides(category: str | None, root: str) -> dict[str, Any]:
    """The data.* overrides of a real category (none for the demo)."""
    if category is None:
        return {}
    if not (Path(root) / category / "train").is_dir():
        raise MetricadError(f"--root {root}: no MVTec AD category {category!r} there")
    return {"data.source": "mvtec", "data.root": root, "data.category": category}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    for line in info.read_text(encoding="utf-8").splitlines() if info.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def model_md5() -> str:
    lock = yaml.safe_load(Path("dvc.lock").read_text(encoding="utf-8"))
    outs = lock["stages"]["train"]["outs"]
    return next(out["md5"] for out in outs if out["path"] == "models/model.pt")


def committed_params() -> tuple[dict[str, Any], bytes]:
    """HEAD's params.yaml, parsed and as bytes: the base of every cell. Not the working file,
    which a survey stopped mid-cell leaves holding that cell's overrides."""
    text = subprocess.run(
        ["git", "show", "HEAD:params.yaml"], capture_output=True, check=True
    ).stdout
    return yaml.safe_load(text.decode("utf-8")), text


def run_cell(params: dict[str, Any], log: Path) -> float:
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    start = time.perf_counter()
    with log.open("a", encoding="utf-8") as out:
        # Never from the run cache: DVC 3.67 restored a bottle cell's 128 px data/resized for
        # resize.size 192 (the run-cache key missed the changed section); every cell runs.
        done = subprocess.run(
            ["dvc", "repro", "--no-run-cache"], stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise MetricadError(f"dvc repro failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python scripts/survey.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, help="default surveys/demo, surveys/real/<category>")
    parser.add_argument("--category", help="a real MVTec AD category under --root")
    parser.add_argument("--root", default="../shared/realdata")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", nargs="+", type=int, default=[300, 500, 1000])
    args = parser.parse_args()
    data = data_overrides(args.category, args.root)
    if args.out is None:
        args.out = Path("surveys/real", args.category) if args.category else Path("surveys/demo")
    if git("status", "--porcelain", "--", *MEASURED):
        raise MetricadError(
            f"uncommitted changes in {', '.join(MEASURED)}: a survey measures a commit; "
            "run it from a clean clone"
        )
    base, original = committed_params()
    if Path("params.yaml").read_bytes() != original:
        print("params.yaml differs from HEAD's (a survey stopped mid-cell?): cells use HEAD's")
    commit, states = git("rev-parse", "HEAD"), args.out / ".states"
    states.mkdir(parents=True, exist_ok=True)
    cells = [
        (setting, seed, epochs)
        for epochs in sorted(args.epochs)
        for setting in args.settings
        for seed in args.seeds
    ]
    try:
        for number, (setting, seed, epochs) in enumerate(cells, start=1):
            path = args.out / setting / f"seed{seed}-{epochs}ep.json"
            if path.exists():
                continue
            state = states / f"{setting}-seed{seed}.pt"
            if state.exists():
                shutil.copyfile(state, TRAIN_STATE)  # the train stage continues it if it fits
            params = cell_params(base, setting, seed, epochs, data)
            print(f"[{number}/{len(cells)}] {setting} seed {seed} {epochs} epochs", flush=True)
            seconds = run_cell(params, args.out / "survey.log")
            if Path(TRAIN_STATE).exists():
                shutil.copyfile(TRAIN_STATE, state)
            metrics = {name: read_json(name) for name in METRICS_FILES}
            write_json(
                path,
                {
                    "setting": setting,
                    "seed": seed,
                    "epochs": epochs,
                    "overrides": {**SETTINGS[setting], **data},
                    "params": params,
                    "metrics": metrics,
                    "model_md5": model_md5(),
                    "commit": commit,
                    "machine": cpu_name(),
                    "numerics": metrics["metrics/train.json"].get("numerics"),
                    "seconds": round(seconds, 1),
                },
            )
            scores = metrics["metrics/evaluate.json"]["scores"]
            shown = ", ".join(f"{name} {value['auroc']}" for name, value in scores.items())
            print(f"    image AUROC {shown} ({seconds:.0f} s) -> {path}", flush=True)
    finally:
        Path("params.yaml").write_bytes(original)


if __name__ == "__main__":
    run_stage(main)
