"""What the end-to-end tests share: the tiny params, a copy of the pipeline as its own git +
DVC repository, and commands run with the venv's tools."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
# The grid's categories (conftest's `grid`); leather, the default, runs in every other
# end-to-end test.
GRID_CATEGORIES = ("bottle", "carpet")


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


def shown_value(data: dict, kind: str, path: str, key: str) -> object:
    """A dotted `key` of one experiment's shown_experiments data: its `kind` ("params",
    "metrics", "committed") of file `path`."""
    value = data[kind][path]["data"]
    for part in key.split("."):
        value = value[part]
    return value


def run_queue(project: Path, count: int, log: Path, timeout_s: float = 900) -> None:
    """Start the queue's two workers and wait until its `count` experiments succeeded; no
    worker outlives the call (a failure would leave it running)."""
    try:
        _start_queue_workers(project, log)
        _wait_for_queue(project, count, log, timeout_s)
    finally:
        run_cmd(["dvc", "queue", "stop", "--kill"], project, check=False)


def _start_queue_workers(project: Path, log: Path) -> None:
    """`dvc queue start`, its output to a file: the workers it spawns inherit the command's
    stdout, so with captured pipes it would return only when the last worker exits."""
    with log.open("a", encoding="utf-8") as out:
        subprocess.run(
            ["dvc", "queue", "start", "--jobs", "2"],
            cwd=project,
            env=venv_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=True,
        )


def _worker_logs(project: Path) -> list[Path]:
    """The queue's worker logs (DVC's celery workers write them there)."""
    return sorted((project / ".dvc" / "tmp" / "exps" / "celery").glob("*.out"))


def _queue_report(project: Path, status: str) -> str:
    """The queue's status and every worker's log, for a failure message."""
    logs = _worker_logs(project)
    return status + "".join(f"\n--- {log.name}:\n{log.read_text()[-3000:]}" for log in logs)


def _finished_in_worker_logs(project: Path) -> int:
    """How many tasks the queue's workers have logged as ended (succeeded or raised): read
    between `dvc queue status` calls, which cost about a CPU second each, taken from the runs."""
    ended = re.compile(r"run_exp\[[^\]]*\] (?:succeeded|raised)")
    return sum(len(ended.findall(log.read_text(errors="replace"))) for log in _worker_logs(project))


def _wait_for_queue(project: Path, count: int, log: Path, timeout_s: float) -> None:
    """Wait until `count` tasks succeeded, by `dvc queue status` whenever a worker's log shows
    a task ended and every 30 s; on a failure show its log.

    Workers that stop while tasks are still queued (treeverse/dvc#10562) are started again,
    once no worker has been seen for 30 s (a worker just spawned takes seconds to show)."""
    deadline = time.monotonic() + timeout_s
    workers_seen = asked_at = time.monotonic()
    ended = -1
    while True:
        now_ended = _finished_in_worker_logs(project)
        if now_ended == ended and time.monotonic() < asked_at + 30:
            time.sleep(2)
            continue
        ended, asked_at = now_ended, time.monotonic()
        status = run_cmd(["dvc", "queue", "status"], project).stdout
        # Rows: "<task> <name> <created, with a space> <status>"; then "Worker status: N active,
        # M idle".
        lines = [line for line in status.splitlines()[1:] if line.strip()]
        tasks = {
            line.split()[1]: line.split()[-1] for line in lines if not line.startswith("Worker")
        }
        failed = [name for name, state in tasks.items() if state == "Failed"]
        if failed:
            logs = run_cmd(["dvc", "queue", "logs", failed[0]], project, check=False)
            pytest.fail(f"queued experiment {failed[0]} failed:\n{logs.stdout}\n{logs.stderr}")
        if len(tasks) == count and set(tasks.values()) == {"Success"}:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"queue not done after {timeout_s} s:\n{_queue_report(project, status)}")
        if "Worker status: 0 active, 0 idle" not in status:
            workers_seen = time.monotonic()
        elif "Queued" in tasks.values() and time.monotonic() - workers_seen > 30:
            _start_queue_workers(project, log)
            workers_seen = time.monotonic()
