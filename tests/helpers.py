"""What the end-to-end tests share: the tiny params, a copy of the pipeline as its own git +
DVC repository, and commands run with the venv's tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# The tiny run the end-to-end tests share. One thread per run: `make test` runs two workers on
# the 2-core machines, and two runs of 2 threads each oversubscribe the cores (two of these
# repros at once: 50 s with 1 thread each, 58 s with 2).
TINY = {
    "epochs": 2,
    "data": {"synthetic": {"image_size": 64}},
    "resize": {"size": 32},
    "model": {"embedding_dim": 32},
    "train": {"batch_size": 32},
    "runtime": {"threads": 1, "checkpoint_every": 0},
    "tsne": {"perplexity": 5.0, "max_iter": 250},
    "gradcam": {"train_images": 4},
}


def merge_params(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = merge_params(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def venv_env(**extra: str) -> dict[str, str]:
    """This environment with the venv's bin first on PATH: `dvc`, and stages that run `python`,
    find the interpreter running the tests."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return dict(os.environ, PATH=path, **extra)


def run_cmd(
    args: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = venv_env(**(env or {}))
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def make_project(tmp_path: Path, params: dict) -> Path:
    """A copy of the pipeline (no outputs, no lock) as its own git + DVC repository."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "stages", "src", ".dvc", ".dvcignore", ".gitignore", "plots_template"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source, project / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache")
            )
        else:
            shutil.copy(source, project / name)
    merged = merge_params(yaml.safe_load((REPO / "params.yaml").read_text()), params)
    (project / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    run_cmd(["git", "init", "-q"], project)
    run_cmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], project)
    run_cmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], project)
    return project


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


DETAILED = (
    "metrics/evaluate.json",
    "metrics/gradcam.json",
    "metrics/tsne.json",
    "metrics/train.json",
)


def shown_experiments(project: Path) -> dict[str, dict]:
    """{experiment name: its `dvc exp show --json` data}, with its detailed metrics files (plain
    outputs, not in exp show) as committed in the experiment, under "committed"."""
    shown = json.loads(run_cmd(["dvc", "exp", "show", "--json"], project).stdout)
    experiments = {e["name"]: e["revs"][0] for b in shown for e in b["experiments"] or []}
    for rev in experiments.values():
        committed = {
            path: run_cmd(["git", "show", f"{rev['rev']}:{path}"], project).stdout
            for path in (*DETAILED, "dvclive/metrics.json")
        }
        rev["data"]["committed"] = {p: {"data": json.loads(raw)} for p, raw in committed.items()}
    return {name: rev["data"] for name, rev in experiments.items()}
