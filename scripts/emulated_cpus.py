"""Run the golden computation (metricad/golden.py) under QEMU's CPU emulation, as other
processors: another vendor, other cache sizes, another model number. The expected md5s are
tests/test_golden.py's; each CPU model gets "all N steps match" or its first difference.

Needs qemu-user (Debian: `apt-get install qemu-user`); QEMU 7.2 emulates AVX2 but not AVX-512,
and each model is slow: `--cpus Haswell-v4 --jobs 1` took 35 min on a 2-core AMD EPYC Zen 3.

    python scripts/emulated_cpus.py [--cpus Haswell-v4 EPYC-Milan ...] [--jobs 2]
"""

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_golden import EXPECTED, first_difference  # noqa: E402

CPUS = ("Haswell-v4", "Skylake-Client-v4", "Icelake-Server-v6", "EPYC-Rome", "EPYC-Milan")


def emulated(cpu: str) -> list[tuple[str, str]]:
    # The interpreter itself (not the venv's link to it), with the venv's packages on the path.
    python = os.path.realpath(sys.executable)
    paths = [sysconfig.get_paths()["purelib"], str(ROOT / "src")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    done = subprocess.run(
        ["qemu-x86_64", "-cpu", cpu, python, "-m", "metricad.golden"],
        cwd="/tmp",  # no params.yaml: the default thread count, as in tests/test_golden.py
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return [("(crashed)", done.stderr.strip().splitlines()[-1:][0] if done.stderr else "")]
    return [tuple(line.split("  ", 1)[::-1]) for line in done.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpus", nargs="+", default=list(CPUS))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("qemu-x86_64") is None:
        raise SystemExit("error: qemu-x86_64 not found (Debian: apt-get install qemu-user)")
    with ThreadPoolExecutor(args.jobs) as pool:
        for cpu, got in zip(args.cpus, pool.map(emulated, args.cpus), strict=True):
            difference = first_difference(got, EXPECTED)
            print(f"{cpu:20s} {difference or f'all {len(EXPECTED)} steps match'}", flush=True)


if __name__ == "__main__":
    main()
