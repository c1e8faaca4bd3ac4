"""docs/grid.md's "Several machines" over SSH, the way two machines share a DVC remote: an
experiment of the grid run on the first machine (conftest's `grid`, whose project has its DVC
remote on this test's own sshd) is pushed (`dvc exp push`) to a bare git remote and over SSH
(dvc-ssh), pulled (`dvc exp pull`) on a second clone with its own login key, and reported there
the same as on the first.

The sshd runs as the current user on 127.0.0.1 with a config, host key and authorized keys all
in a temporary folder (tests/sshd.py); where it cannot start (openssh-server not installed, as
root without its /run/sshd), the test is skipped with the reason. `.ci/run` installs
openssh-server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from helpers import GRID_CATEGORIES, run_cmd, shown_experiments, shown_value
from sshd import login, user

pytestmark = pytest.mark.slow


def _reports(project: Path, experiment: str, out: Path) -> dict[str, str]:
    """Both of metricad.compare's views of the experiment, as docs/grid.md runs them."""
    compare = [sys.executable, "-m", "metricad.compare"]
    run_cmd([*compare, "--rows", "data.category", experiment, "--out", str(out)], project)
    run_cmd([*compare, experiment, "--out", str(out)], project)
    names = ("benchmark.md", "benchmark.json", "benchmark.html", "compare.md", "compare.html")
    return {name: (out / name).read_text() for name in names}


def _cached(project: Path, md5: str) -> Path:
    return project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def test_experiment_pushed_over_ssh_is_pulled_and_reported_the_same_on_a_second_machine(grid, sshd):
    if "unavailable" in sshd:
        pytest.skip(f"sshd not available: {sshd['unavailable']}")
    root, worker, storage = grid["root"], grid["project"], grid["storage"]
    (experiment,) = [
        name
        for name, data in grid["shown"].items()
        if shown_value(data, "params", "params.yaml", "data.category") == GRID_CATEGORIES[0]
    ]

    # The git remote every machine clones: the project with its DVC remote's address.
    remote = root / "remote.git"
    run_cmd(["git", "init", "-q", "--bare", str(remote)], root)
    run_cmd(["git", "remote", "add", "origin", str(remote)], worker)
    run_cmd(["git", "push", "-q", "origin", "HEAD"], worker)

    # The first machine pushes its experiment: git refs to origin, cached outputs over SSH.
    run_cmd(["dvc", "exp", "push", "origin", experiment], worker, env=grid["login"]["env"])
    assert any(path.is_file() for path in storage.rglob("*")), "nothing reached the SSH remote"
    expected = _reports(worker, experiment, root / "worker-report")

    # The second machine: a clone with its own login (.dvc/config.local), pulls it and reports.
    reporter = root / "reporter"
    run_cmd(["git", "clone", "-q", str(remote), str(reporter)], root)
    reporter_login = login(root, "reporter", sshd, reporter)
    listed = run_cmd(["dvc", "exp", "list", "origin", "--name-only"], reporter).stdout
    assert listed.split() == [experiment]
    run_cmd(["dvc", "exp", "pull", "origin", experiment], reporter, env=reporter_login["env"])
    pulled = _reports(reporter, experiment, root / "reporter-report")
    for name, text in expected.items():
        assert pulled[name] == text, name
    shown = shown_experiments(reporter)
    assert list(shown) == [experiment]
    for kind in ("params", "metrics"):
        assert shown[experiment][kind] == grid["shown"][experiment][kind], kind

    # The model travelled over SSH: in the remote's folder, and byte for byte in the reporter's
    # cache; the server logged both machines' keys.
    refs = run_cmd(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], reporter)
    (ref,) = [line for line in refs.stdout.split() if line.endswith(f"/{experiment}")]
    lock = yaml.safe_load(run_cmd(["git", "show", f"{ref}:dvc.lock"], reporter).stdout)
    (model,) = [out for out in lock["stages"]["train"]["outs"] if out["path"] == "models/model.pt"]
    md5 = model["md5"]
    assert (storage / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    assert _cached(reporter, md5).read_bytes() == _cached(worker, md5).read_bytes()
    log = sshd["log"].read_text()
    assert f"Accepted publickey for {user()} from 127.0.0.1" in log, log
    for machine in (grid["login"], reporter_login):
        assert machine["fingerprint"] in log, log
