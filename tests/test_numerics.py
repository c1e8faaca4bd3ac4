"""The same params give the same bytes whatever the CPU's vector units, core count or the
user's environment: a few training steps under settings that mimic other machines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metricad.numerics import (
    DEFAULT_KERNELS,
    DEFAULT_THREADS,
    THREAD_VARIABLES,
    X86_ISA,
    is_x86,
    settings_from_params,
)
from metricad.params import RuntimeParams

# A few training steps with synthetic anomalies; prints the capability, the threads and the
# md5 of the weights. "pinned" imports metricad.numerics first, as every stage does.
STEPS = """
import sys
if sys.argv[1] == "pinned":
    import metricad.numerics  # noqa: F401
import hashlib, io
import torch
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.params import params_from_dict
from metricad.runtime import make_deterministic
from metricad.model.training import train
params = params_from_dict({"resize": {"size": 32}, "model": {"embedding_dim": 16},
    "train": {"batch_size": 8, "synthetic_anomalies": "cutpaste"}})
make_deterministic(0)
generator = torch.Generator().manual_seed(0)
images = torch.randint(0, 256, (16, 3, 32, 32), generator=generator, dtype=torch.uint8)
model = model_from_arch(arch_from_params(params))
train(model, images, torch.zeros(16, dtype=torch.long), params.train, 2, torch.device("cpu"),
    progress=False)
buffer = io.BytesIO()
torch.save(model.state_dict(), buffer)
print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(),
    hashlib.md5(buffer.getvalue()).hexdigest())
"""
# What another machine, or a user's shell, may hold. Settings that pinning overrides the same
# way share a process (each costs 7-10 s of imports); the first line of the failure names it.
OTHER_MACHINES = {
    "host defaults": {},
    "no vector kernels": {"ATEN_CPU_CAPABILITY": "default"},
    "one thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "AVX-512 kernels, eight threads": {"ATEN_CPU_CAPABILITY": "avx512", "OMP_NUM_THREADS": "8"},
    "oneDNN, MKL and OpenBLAS left set": {
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
        "MKL_CBWR": "COMPATIBLE",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "OPENBLAS_CORETYPE": "SkylakeX",
    },
}


def _steps(tmp_path: Path, mode: str, env: dict[str, str]) -> list[str]:
    script = tmp_path / "steps.py"
    script.write_text(STEPS)
    clean = {k: v for k, v in os.environ.items() if k not in (*X86_ISA, *THREAD_VARIABLES)}
    done = subprocess.run(
        [sys.executable, str(script), mode],
        cwd=tmp_path,  # no params.yaml there: the default thread count
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout.split()


@pytest.mark.slow
@pytest.mark.skipif(not is_x86(), reason="the pinned kernels are x86-64's AVX2")
def test_pinned_steps_give_the_same_bytes_on_every_machine_like_setting(tmp_path):
    results = {name: _steps(tmp_path, "pinned", env) for name, env in OTHER_MACHINES.items()}
    assert {tuple(result) for result in results.values()} == {
        ("AVX2", str(DEFAULT_THREADS), results["host defaults"][2])
    }, results


@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() == "DEFAULT", reason="no vector kernels here"
)
def test_without_pinning_the_same_steps_differ(tmp_path):
    """The test above has teeth: unpinned, these settings change the weights."""
    native = _steps(tmp_path, "unpinned", {})
    scalar = _steps(tmp_path, "unpinned", OTHER_MACHINES["no vector kernels"])
    single = _steps(tmp_path, "unpinned", OTHER_MACHINES["one thread"])
    assert len({native[2], scalar[2], single[2]}) == 3


def test_settings_come_from_params(tmp_path):
    assert (RuntimeParams().threads, RuntimeParams().cpu_kernels) == (
        DEFAULT_THREADS,
        DEFAULT_KERNELS,
    )
    params = tmp_path / "params.yaml"
    assert settings_from_params(params) == (DEFAULT_THREADS, DEFAULT_KERNELS)  # no file
    params.write_text("runtime:\n  threads: 6\n  cpu_kernels: native\n")
    assert settings_from_params(params) == (6, "native")
    params.write_text("runtime:\n  threads: many\n  cpu_kernels: 7\n")  # reported later
    assert settings_from_params(params) == (DEFAULT_THREADS, DEFAULT_KERNELS)
    params.write_text("runtime: [1, 2]\n")
    assert settings_from_params(params) == (DEFAULT_THREADS, DEFAULT_KERNELS)


def test_every_stage_pins_before_numpy_and_torch_load():
    root = Path(__file__).resolve().parents[1]
    # predict too: unpinned, an AVX-512 CPU gave other scores than the pipeline's.
    entry_points = [*sorted((root / "stages").glob("*.py")), root / "src/metricad/predict.py"]
    for script in entry_points:
        imports = [
            line
            for line in script.read_text().splitlines()
            if line.startswith(("import ", "from ")) and "__future__" not in line
        ]
        assert imports[0].startswith("import metricad.numerics"), script


def test_deterministic_kernels_are_asked_for_without_loading_the_compiler():
    """make_deterministic sets torch's switch for deterministic kernels, as
    torch.use_deterministic_algorithms does, without importing torch._dynamo (1.6 s a stage)."""
    check = (
        "import sys, torch\n"
        "from metricad.runtime import make_deterministic\n"
        "make_deterministic(0)\n"
        "print(torch.are_deterministic_algorithms_enabled(),"
        " torch.is_deterministic_algorithms_warn_only_enabled(),"
        " 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["True", str(torch.cuda.is_available()), "False"]
