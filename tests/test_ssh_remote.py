"""docs/grid.md's "Several machines" over SSH, the way two machines share a DVC remote: a tiny
experiment run on one clone is pushed (`dvc exp push`) to a bare git remote and to an ssh://
DVC remote served by this test's own sshd (dvc-ssh), pulled (`dvc exp pull`) on a second clone
with its own login key, and reported there the same as on the first.

The sshd runs as the current user on 127.0.0.1 with a config, host key and authorized keys all
in tmp_path; where it cannot start (openssh-server not installed, as root without its
/run/sshd), the test is skipped with the reason. `.ci/run` installs openssh-server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import GIT, TINY, make_project, run_cmd, shown_experiments

pytestmark = pytest.mark.slow

EXPERIMENT = "ssh-run"
SSHD_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"  # sshd is rarely on a non-root user's PATH


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _banner(port: int) -> bool:
    """Whether an SSH server answers on the port (its version line)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _sshd_config(folder: Path, port: int) -> Path:
    config = folder / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {folder / "host_key"}
AuthorizedKeysFile {folder / "authorized_keys"}
PidFile {folder / "sshd.pid"}
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {pwd.getpwuid(os.getuid()).pw_name}
X11Forwarding no
AllowAgentForwarding no
Subsystem sftp internal-sftp
"""
    )
    return config


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def sshd(tmp_path) -> Iterator[dict]:
    """An sshd of the current user on 127.0.0.1 at a free port, everything it reads in
    tmp_path/sshd: {"port", "folder", "host_key", "log"}. Clients add their keys to
    folder/authorized_keys. Stopped at the end."""
    binary = shutil.which("sshd") or shutil.which("sshd", path=SSHD_DIRS)
    if binary is None or shutil.which("ssh-keygen") is None:
        pytest.skip("sshd not available: openssh-server is not installed")
    folder = tmp_path / "sshd"
    folder.mkdir()
    host_key = folder / "host_key"
    run_cmd(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sshd", "-f", str(host_key)], folder
    )
    (folder / "authorized_keys").touch()
    log = folder / "sshd.log"
    for _attempt in range(3):  # another process may take the free port before sshd binds it
        port = _free_port()
        config = _sshd_config(folder, port)
        checked = run_cmd([binary, "-t", "-f", str(config)], folder, check=False)
        if checked.returncode != 0:
            reason = checked.stderr.strip() or f"sshd -t exited {checked.returncode}"
            pytest.skip(f"sshd not available: {reason.splitlines()[-1]}")
        with log.open("w") as err:
            process = subprocess.Popen(
                [binary, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 15
        while process.poll() is None and not _banner(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        if process.poll() is None and _banner(port):
            break
        _stop(process)
        if "Address already in use" not in log.read_text():
            reason = (log.read_text().strip() or "no answer").splitlines()[-1]
            pytest.skip(f"sshd not available: {reason}")
    else:
        pytest.skip("sshd not available: no free port after 3 tries")
    try:
        yield {"port": port, "folder": folder, "host_key": host_key, "log": log}
    finally:
        _stop(process)


def _machine(root: Path, name: str, sshd: dict) -> dict:
    """One machine's SSH side: its own login key, authorised by the server and kept outside
    ~/.ssh (so only DVC's `keyfile` finds it), and an empty home for DVC's commands that reach
    the remote, so that this user's own ~/.ssh (config, keys) and agent play no part.

    No known_hosts: dvc-ssh 4.3 connects through sshfs, which turns asyncssh's host key check
    off (known_hosts=None) and gives DVC no option to turn it on."""
    key = root / f"{name}-key"
    run_cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], root)
    with (sshd["folder"] / "authorized_keys").open("a") as keys:
        keys.write(key.with_suffix(".pub").read_text())
    home = root / f"{name}-home"
    home.mkdir()
    fingerprint = run_cmd(["ssh-keygen", "-l", "-f", str(key)], root).stdout.split()[1]
    return {"key": key, "env": {"HOME": str(home), "SSH_AUTH_SOCK": ""}, "fingerprint": fingerprint}


def _reports(project: Path, out: Path) -> dict[str, str]:
    """Both of metricad.compare's views of the experiment, as docs/grid.md runs them."""
    compare = [sys.executable, "-m", "metricad.compare"]
    run_cmd([*compare, "--rows", "data.category", EXPERIMENT, "--out", str(out)], project)
    run_cmd([*compare, EXPERIMENT, "--out", str(out)], project)
    names = ("benchmark.md", "benchmark.json", "benchmark.html", "compare.md", "compare.html")
    return {name: (out / name).read_text() for name in names}


def _cached(project: Path, md5: str) -> Path:
    return project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def test_experiment_pushed_over_ssh_is_pulled_and_reported_the_same_on_a_second_machine(
    tmp_path, sshd
):
    root = tmp_path
    user = pwd.getpwuid(os.getuid()).pw_name
    storage = root / "dvc-remote"  # the SSH host's folder
    url = f"ssh://127.0.0.1:{sshd['port']}{storage}"

    # Once: the project with its DVC remote, on the git remote every machine clones.
    project = make_project(root, TINY)
    run_cmd(["git", "init", "-q", "--bare", str(root / "remote.git")], root)
    run_cmd(["dvc", "remote", "add", "-d", "storage", url], project)
    run_cmd(["git", "remote", "add", "origin", str(root / "remote.git")], project)
    run_cmd([*GIT, "commit", "-qam", "DVC remote over SSH"], project)
    run_cmd(["git", "push", "-q", "origin", "HEAD"], project)

    # Each machine: a clone, its SSH login kept out of git (.dvc/config.local).
    machines = {}
    for name in ("worker", "reporter"):
        clone = root / name
        run_cmd(["git", "clone", "-q", str(root / "remote.git"), str(clone)], root)
        machines[name] = {"clone": clone, **_machine(root, name, sshd)}
        run_cmd(["dvc", "remote", "modify", "--local", "storage", "user", user], clone)
        run_cmd(
            [
                "dvc",
                "remote",
                "modify",
                "--local",
                "storage",
                "keyfile",
                str(machines[name]["key"]),
            ],
            clone,
        )
    worker, reporter = machines["worker"], machines["reporter"]

    # The worker runs the experiment and pushes it: git refs to origin, cached outputs over SSH.
    run_cmd(["dvc", "exp", "run", "-n", EXPERIMENT], worker["clone"])
    run_cmd(["dvc", "exp", "push", "origin", EXPERIMENT], worker["clone"], env=worker["env"])
    assert any(path.is_file() for path in storage.rglob("*")), "nothing reached the SSH remote"
    expected = _reports(worker["clone"], root / "worker-report")

    # The reporter pulls it and reports.
    listed = run_cmd(["dvc", "exp", "list", "origin", "--name-only"], reporter["clone"]).stdout
    assert listed.split() == [EXPERIMENT]
    run_cmd(["dvc", "exp", "pull", "origin", EXPERIMENT], reporter["clone"], env=reporter["env"])
    pulled = _reports(reporter["clone"], root / "reporter-report")
    for name, text in expected.items():
        assert pulled[name] == text, name
    shown = {
        "worker": shown_experiments(worker["clone"]),
        "reporter": shown_experiments(reporter["clone"]),
    }
    assert list(shown["reporter"]) == [EXPERIMENT]
    for kind in ("params", "metrics"):
        assert shown["reporter"][EXPERIMENT][kind] == shown["worker"][EXPERIMENT][kind], kind

    # The model travelled over SSH: in the remote's folder, and byte for byte in the reporter's
    # cache; the server logged both machines' keys.
    refs = run_cmd(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], reporter["clone"])
    (ref,) = [line for line in refs.stdout.split() if line.endswith(f"/{EXPERIMENT}")]
    lock = yaml.safe_load(run_cmd(["git", "show", f"{ref}:dvc.lock"], reporter["clone"]).stdout)
    (model,) = [out for out in lock["stages"]["train"]["outs"] if out["path"] == "models/model.pt"]
    md5 = model["md5"]
    assert (storage / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    received = _cached(reporter["clone"], md5)
    assert received.read_bytes() == _cached(worker["clone"], md5).read_bytes()
    log = sshd["log"].read_text()
    for machine in (worker, reporter):
        assert f"Accepted publickey for {user} from 127.0.0.1" in log, log
        assert machine["fingerprint"] in log, log
