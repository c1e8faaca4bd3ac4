"""The experiments to report, as DVC and git store them: `dvc exp show --json` for the
experiments of the workspace, the committed files for a git revision."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from metricad.errors import MetricadError
from metricad.files import read_json

PARAMS_FILE = "params.yaml"
# The metrics files a revision's report reads (tables.METRIC_ROWS picks rows from them).
METRICS_FILES = (
    "metrics/evaluate.json",
    "metrics/tsne.json",
    "metrics/gradcam.json",
    "metrics/train.json",
)
MISSING = object()


@dataclass(frozen=True)
class Experiment:
    """One experiment or revision: its params and metrics as stored (nested, per file)."""

    name: str
    rev: str
    params: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, Any]]


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


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), capture_output=True, check=False)


def git_file(rev: str, path: str) -> bytes | None:
    """A file's bytes at a commit, or None where that commit has no such file."""
    done = _run(["git", "cat-file", "blob", f"{rev}:{path}"])
    return done.stdout if done.returncode == 0 else None


def experiments_shown() -> list[dict[str, Any]]:
    # Through this interpreter's dvc, so the report works without the venv on PATH.
    done = _run([sys.executable, "-m", "dvc", "exp", "show", "--json"])
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        raise MetricadError(f"dvc exp show failed: {message[-1]}")
    return json.loads(done.stdout)


def _stored(files: Mapping[str, Any]) -> dict[str, Any]:
    # exp show stores each file as {"data": ...} or, when unreadable, {"error": ...}.
    return {path: entry["data"] for path, entry in files.items() if "data" in entry}


def finished_experiments(
    shown: Sequence[Mapping[str, Any]],
) -> tuple[list[Experiment], dict[str, str]]:
    """The finished experiments of `dvc exp show --json`'s baselines, oldest
    first, and {name: state} for the queued, running or failed ones (they have no results)."""
    finished = []
    unfinished = {}
    for baseline in shown:
        for entry in baseline.get("experiments") or []:
            rev = entry["revs"][0]
            executor = entry.get("executor") or {}
            state = executor.get("state", "success")
            if state != "success" or rev.get("error"):
                unfinished[entry["name"]] = "failed" if rev.get("error") else state
                continue
            data = rev["data"]
            experiment = Experiment(
                entry["name"],
                rev["rev"],
                _stored(data["params"]).get(PARAMS_FILE, {}),
                # exp show has the declared (headline) metrics; the detailed files are plain
                # outputs, committed in the experiment's commit.
                _stored(data["metrics"]) | _committed_metrics(rev["rev"]),
            )
            finished.append((data.get("timestamp") or "", experiment))
    finished.sort(key=lambda pair: pair[0])
    return [experiment for _, experiment in finished], unfinished


def _parse_file(rev: str, path: str, raw: bytes) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(raw) if path.endswith(".yaml") else json.loads(raw)
    except (yaml.YAMLError, ValueError) as error:
        raise MetricadError(f"{rev}:{path} is not valid: {error}".splitlines()[0]) from None
    if not isinstance(tree, dict):
        raise MetricadError(f"{rev}:{path} is not a mapping of names to values")
    return tree


def _committed_metrics(sha: str, label: str | None = None) -> dict[str, Any]:
    """The METRICS_FILES a commit holds, parsed (`label`: the commit's name in errors)."""
    files = {}
    for path in METRICS_FILES:
        raw = git_file(sha, path)
        if raw is not None:
            files[path] = _parse_file(label or sha, path, raw)
    return files


def revision_experiment(name: str) -> Experiment | None:
    """An experiment from the files committed at a git revision (or an experiment ref of any
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
    raw = git_file(sha, PARAMS_FILE)
    params = _parse_file(name, PARAMS_FILE, raw) if raw is not None else {}
    return Experiment(name, sha, params, _committed_metrics(sha, name))


def survey_experiments(folder: Path, seeds: Sequence[int] | None = None) -> list[Experiment]:
    """The cells of a survey (scripts/survey.py): one experiment per cell file, with the
    survey's dimensions as its params (setting, epochs, train.seed) and its metrics as run;
    only the cells of `seeds` when given."""
    paths = sorted(p for p in Path(folder).glob("*/*.json") if not p.parent.name.startswith("."))
    if not paths:
        raise MetricadError(f"--survey {folder}: no cell files (<setting>/seed<N>-<E>ep.json)")
    experiments = []
    for path in paths:
        try:
            cell = read_json(path)
            params = {
                "setting": cell["setting"],
                "epochs": cell["epochs"],
                "train": {"seed": cell["seed"]},
            }
            if seeds is None or cell["seed"] in seeds:
                experiments.append(Experiment(path.stem, cell["commit"], params, cell["metrics"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise MetricadError(f"{path}: not a survey cell ({error})") from None
    if not experiments:
        raise MetricadError(f"--survey {folder}: no cell of seeds {list(seeds or [])}")
    return experiments


def select_experiments(
    names: Sequence[str], shown: Sequence[Mapping[str, Any]]
) -> list[Experiment]:
    """The experiments the user asked for: experiment names first, then git revisions; none
    asked for means every finished experiment."""
    finished, unfinished = finished_experiments(shown)
    if not names:
        if not finished:
            raise MetricadError(
                "no finished experiments of this commit: run `dvc exp run` or name revisions"
            )
        return finished
    by_name = {experiment.name: experiment for experiment in finished}
    experiments = []
    for name in names:
        if name in unfinished:
            raise MetricadError(f"experiment {name} has no results (it is {unfinished[name]})")
        experiment = by_name.get(name) or revision_experiment(name)
        if experiment is None:
            raise MetricadError(f"unknown experiment or git revision: {name}")
        experiments.append(experiment)
    return experiments
