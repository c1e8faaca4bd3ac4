"""The golden test: the pinned numerics give these bytes on every x86-64 CPU with AVX2.

EXPECTED is what `python -m metricad.golden` printed on the machines listed in
docs/reproducibility.md. On a machine where the test fails, its message names the first
step that differs: the kernel or stage where that machine leaves the promise (every later
step then differs too). Never update EXPECTED to make the test pass on one machine; it
changes only with code that changes the numbers on every machine, and then the committed
dvc.lock, metrics/ and plots/ change with it.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys

import pytest
import torch

from metricad.numerics import THREAD_VARIABLES, X86_ISA, is_x86

EXPECTED = {
    "convolution conv1: forward": "d9df6372398600e7c445c4e2a5a0ff34",
    "convolution conv1: backward to the input": "262c90994cfb928fe463b946ccad1a4d",
    "convolution conv1: backward to the weights": "a3c82517e2aa081793f7c03bcee52139",
    "convolution layer1: forward": "d7bfcbfda4cdbbb5bab1d8ec420aec7c",
    "convolution layer1: backward to the input": "8b30f117f8432efcdbf508a1a9b9ec5d",
    "convolution layer1: backward to the weights": "91b70f43d10338cd8280d2151c681292",
    "convolution layer2 stride 2: forward": "4d128a0c0c3195dc4458ffaadfad143b",
    "convolution layer2 stride 2: backward to the input": "1f18c04148ff3b1daa0e784d812ed987",
    "convolution layer2 stride 2: backward to the weights": "e9711961abe8037dd2fdfed7b8e897f0",
    "convolution layer2 downsample: forward": "ab1b009895de42e36ea8d797273a0631",
    "convolution layer2 downsample: backward to the input": "3668f18a4945fb056760483873bfbf31",
    "convolution layer2 downsample: backward to the weights": "42c227fcc13163f5e009a0c0ef16dbd0",
    "convolution layer3: forward": "01972455d10f7a5271abca894af71286",
    "convolution layer3: backward to the input": "017fc70a038f2c8a610d5006d1dc6278",
    "convolution layer3: backward to the weights": "4072e329ccc3a7b7099349028c2a51f1",
    "convolution layer4: forward": "d6550967cf787d29ba8604d44d988528",
    "convolution layer4: backward to the input": "c7b60599933f47e1b9dc21bae732b7f6",
    "convolution layer4: backward to the weights": "a65910183aaab72aa9b2d6cabfef5494",
    "batch norm: forward": "5c5407c90dd56dced7ec4d27e464990d",
    "batch norm: backward": "e8b03166a9b4820520bcd1ad3d26316d",
    "max pool: forward and backward": "8b55ff75aca8b2805bb5ffac35347c4c",
    "linear: forward": "84964be9505de8faddf8ceca85128ad0",
    "linear: backward": "50666490a472e6fc546f8f81f2a43df8",
    "channel dropout": "5e3add61ad118e6489ac98f101b46355",
    "AdaCos head and its scale update": "5228a6c7de332b7223751791b9260678",
    "cross entropy: forward and backward": "bb2930c23446b38a7eb44b7897208d01",
    "images (torch's generator)": "abea0ee3903cbc53447d055bc6e0b65e",
    "synthetic anomalies": "8ecd20f8dd6237ad1c123957a939e402",
    "initial weights": "2ea0df73e3b7666d02de1e2c2bb93444",
    "one Adam step": "e9555a42592d2354be478d7b023285ff",
    "weights after training epoch 1": "83acbe43522b0755a5ac85ba9aaf3e7a",
    "weights after training epoch 2": "5218c0d7a3f6f4d9e3689186e452cc01",
    "training history": "ec9f5ff3560c1d40a375eb91a9f7cb90",
    "embeddings (eval mode)": "ad67fd705ff9eb1e1e47615dafd4de33",
    "class probabilities": "b1ad7e8a1e666f775d8f47c598ba61ff",
    "embedding of one image alone (a padded batch)": "4d32baa2d6efb22bf3d40b4c8a1994e4",
    "Grad-CAM++ maps at layer2": "dd28c7349dc3a436f3a86b1962ecb17a",
    "pixel AUROC and AUPRO": "ab074bbc89ea6761938d6288f1c2bb12",
    "softmax score": "3b8cd6cfa776ffe2ac1a03cec97d0845",
    "knn score": "7ce94a0650244588bbc652b194c152cd",
    "gaussian score": "9a91cf472829040eb36e83905d1cbe5a",
    "t-SNE map": "32ce990403585cd259ba60dfaab27148",
}


def golden_steps(cwd) -> list[tuple[str, str]]:
    """(step, md5) from a fresh process: the pinning must come before torch loads."""
    clean = {k: v for k, v in os.environ.items() if k not in (*X86_ISA, *THREAD_VARIABLES)}
    done = subprocess.run(
        [sys.executable, "-m", "metricad.golden"],
        cwd=cwd,  # no params.yaml there: the default (committed) thread count
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return [tuple(line.split("  ", 1)[::-1]) for line in done.stdout.splitlines()]


def first_difference(got: list[tuple[str, str]], expected: dict[str, str]) -> str | None:
    """The first step, in order, whose md5 is not the expected one; None when all match."""
    steps = dict(got)
    for step, digest in expected.items():
        if steps.get(step) != digest:
            later = list(expected).index(step)
            return (
                f"first step that differs: {step!r} (expected {digest}, got "
                f"{steps.get(step, 'nothing')}); {len(expected) - later - 1} later steps follow "
                f"from it. Machine: {platform.processor() or platform.machine()}, "
                f"{torch.backends.cpu.get_cpu_capability()}"
            )
    return None


def test_first_difference_names_the_earliest_step():
    expected = {"a": "1", "b": "2", "c": "3"}
    assert first_difference([("a", "1"), ("b", "2"), ("c", "3")], expected) is None
    message = first_difference([("a", "1"), ("b", "9"), ("c", "8")], expected)
    assert message.startswith("first step that differs: 'b' (expected 2, got 9); 1 later")
    assert "'a'" not in first_difference([("a", "1")], expected)


def test_help_prints_usage_without_computing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "metricad.golden", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,  # the import of torch; the chain itself is never started
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m metricad.golden")
    assert "The golden computation" in done.stdout
    assert not re.search(r"^[0-9a-f]{32}  ", done.stdout, re.MULTILINE), "it ran the chain"


@pytest.mark.skipif(
    not is_x86() or torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="the promise holds for x86-64 CPUs with AVX2",
)
def test_golden_computation_gives_the_committed_bytes(tmp_path):
    got = golden_steps(tmp_path)
    assert [step for step, _ in got] == list(EXPECTED), "the golden steps changed"
    assert first_difference(got, EXPECTED) is None, first_difference(got, EXPECTED)
