"""An sshd of the current user on 127.0.0.1, everything it reads in one folder, for the tests of
docs/grid.md's "Several machines" over SSH (tests/test_ssh_remote.py); and each machine's own
login on it.

Where no sshd can start (openssh-server not installed, as root without its /run/sshd, no free
port), `serving_sshd` raises SshdUnavailable with the reason, which the test skips with.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers import run_cmd

SSHD_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"  # sshd is rarely on a non-root user's PATH


class SshdUnavailable(Exception):
    """No sshd could start here; the message says why."""


def user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


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
AllowUsers {user()}
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


@contextmanager
def serving_sshd(folder: Path) -> Iterator[dict]:
    """An sshd at a free port, its config, host key, authorized keys and log in `folder`:
    {"port", "folder", "log"}. Clients add their keys to folder/authorized_keys (`login`).
    Stopped on leaving."""
    binary = shutil.which("sshd") or shutil.which("sshd", path=SSHD_DIRS)
    if binary is None or shutil.which("ssh-keygen") is None:
        raise SshdUnavailable("openssh-server is not installed")
    folder.mkdir(parents=True)
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
            raise SshdUnavailable(reason.splitlines()[-1])
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
            raise SshdUnavailable((log.read_text().strip() or "no answer").splitlines()[-1])
    else:
        raise SshdUnavailable("no free port after 3 tries")
    try:
        yield {"port": port, "folder": folder, "log": log}
    finally:
        _stop(process)


def login(root: Path, name: str, sshd: dict, project: Path) -> dict:
    """One machine's login on the sshd, set in its clone `project` as docs/grid.md has it
    (`dvc remote modify --local storage user/keyfile`, out of git): its own key, authorised
    by the server and kept outside ~/.ssh (so only DVC's `keyfile` finds it), and an empty home
    for DVC's commands that reach the remote, so that this user's own ~/.ssh (config, keys)
    and agent play no part.

    No known_hosts: dvc-ssh 4.3 connects through sshfs, which turns asyncssh's host key check
    off (known_hosts=None) and gives DVC no option to turn it on."""
    key = root / f"{name}-key"
    run_cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], root)
    with (sshd["folder"] / "authorized_keys").open("a") as keys:
        keys.write(key.with_suffix(".pub").read_text())
    home = root / f"{name}-home"
    home.mkdir()
    run_cmd(["dvc", "remote", "modify", "--local", "storage", "user", user()], project)
    run_cmd(["dvc", "remote", "modify", "--local", "storage", "keyfile", str(key)], project)
    fingerprint = run_cmd(["ssh-keygen", "-l", "-f", str(key)], root).stdout.split()[1]
    return {"env": {"HOME": str(home), "SSH_AUTH_SOCK": ""}, "fingerprint": fingerprint}
