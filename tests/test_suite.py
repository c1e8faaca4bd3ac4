"""How `make test` shares the suite between its two workers: the tests of the shared tiny run
all on one worker, which builds it once (tests/conftest.py's groups, `--dist loadgroup`)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Six tests of a stand-in tiny run and six others, each writing down its worker.
TESTS = """
import os
import pytest

@pytest.fixture(scope="session")
def tiny_run():
    return None

def _worker(tmp_path_factory, name):
    folder = tmp_path_factory.getbasetemp().parent.parent / "workers"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(os.environ.get("PYTEST_XDIST_WORKER", "none"))

@pytest.mark.parametrize("index", range(6))
def test_shared(tiny_run, tmp_path_factory, index):
    _worker(tmp_path_factory, f"shared{index}")

@pytest.mark.parametrize("index", range(6))
def test_other(tmp_path_factory, index):
    _worker(tmp_path_factory, f"other{index}")
"""


def _make_test_args() -> list[str]:
    """The arguments `make test` gives pytest."""
    (line,) = [
        line for line in (REPO / "Makefile").read_text().splitlines() if " -m pytest" in line
    ]
    return shlex.split(line.split(" -m pytest", 1)[1])


def test_the_tiny_runs_tests_go_to_one_worker(tmp_path):
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "test_shared.py").write_text(TESTS)
    (tmp_path / "base").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *_make_test_args(), "-q", "-p", "no:cacheprovider"]
        + ["--basetemp", str(tmp_path / "base" / "run")],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO / "tests")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {p.name: p.read_text() for p in (tmp_path / "base" / "workers").iterdir()}
    shared = {workers[f"shared{index}"] for index in range(6)}
    assert len(shared) == 1 and shared != {"none"}, workers
    assert len(set(workers.values())) == 2, workers  # the other tests used both workers
