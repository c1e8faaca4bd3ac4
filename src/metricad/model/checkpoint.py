"""Checkpoints and pretrained weights: every torch file the project reads or writes.

Every load uses `weights_only=True`, so a file can hold tensors and plain containers only:
a pickle that would run code is refused, never executed.
"""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from metricad.errors import MetricadError
from metricad.files import atomic_path
from metricad.model.torch_model import (
    BACKBONE_LAYERS,
    CLASSES,
    AnomalyNet,
    arch_from_params,
    model_from_arch,
)
from metricad.params import Params

CHECKPOINT_FORMAT = "metricad-checkpoint/1"


def safe_load(path: str | Path, what: str) -> Any:
    """torch.load with weights_only=True and one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise MetricadError(f"{path}: {what} not found")
    try:
        with warnings.catch_warnings():
            # torch's note about a pickle protocol other than its default says nothing to the
            # user; what matters (refused or loaded) is said below in one line.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).splitlines()[0]
        raise MetricadError(
            f"{path}: refused: the file holds objects other than tensors, and loading it "
            f"could run code ({reason})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MetricadError(f"{path}: not a readable {what} ({reason})") from None


def save_torch_file(obj: Any, path: str | Path) -> None:
    """torch.save to an open handle: given a path, the zip would record that (temporary,
    random) file name, and equal tensors would give different bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)


def trained_with(params: Params, framing: str | None = None) -> dict[str, Any]:
    """The params that decide the trained weights (the train stage's), as a plain dict: what
    a checkpoint records and a resumable state must match; `framing`: the one the resize
    stage chose (resize.framing auto), None: resize.framing."""
    resize = dataclasses.asdict(params.resize)
    return {
        "epochs": params.epochs,
        "model": dataclasses.asdict(params.model),
        "train": dataclasses.asdict(params.train),
        # The framing too: predict frames a photo as the training photos were.
        "resize": {**resize, "framing": framing or resize["framing"]},
        "split.anomalous_train_fraction": params.split.anomalous_train_fraction,
    }


def save_checkpoint(
    path: str | Path, model: AnomalyNet, params: Params, framing: str | None = None
) -> None:
    """One file with every trained tensor (encoder, neck, head, head scale) and the params
    (`framing`: the one the resize stage chose, as trained_with)."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch_from_params(params, framing),
        "classes": list(CLASSES),
        "params": trained_with(params, framing),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_torch_file(checkpoint, path)


def load_checkpoint(path: str | Path, expected_arch: dict[str, Any] | None = None) -> AnomalyNet:
    """Rebuild the trained network in eval mode, refusing anything incomplete or mismatched."""
    return read_checkpoint(path, expected_arch)[0]


def read_checkpoint(
    path: str | Path, expected_arch: dict[str, Any] | None = None
) -> tuple[AnomalyNet, dict[str, Any]]:
    """The trained network in eval mode and the params it was trained with."""
    checkpoint = safe_load(path, "checkpoint")
    found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
    if (
        isinstance(found, str)
        and found.startswith("metricad-checkpoint/")
        and found != CHECKPOINT_FORMAT
    ):
        raise MetricadError(
            f"{path}: written by another metricad version (format {found!r}, this version "
            f"reads {CHECKPOINT_FORMAT!r}); run `dvc repro train`"
        )
    if found != CHECKPOINT_FORMAT:
        raise MetricadError(f"{path}: not a metricad checkpoint (run `dvc repro train`)")
    arch = checkpoint.get("arch")
    if isinstance(arch, dict):
        # Written before model.standardize, patch_memory or patch_views existed: without them.
        arch = {"standardize": False, "patch_memory": False, "patch_views": "single", **arch}
    if not isinstance(arch, dict) or set(arch) != set(arch_from_params(Params())):
        raise MetricadError(f"{path}: the checkpoint's architecture record is incomplete")
    if expected_arch is not None:
        for key, value in expected_arch.items():
            if arch.get(key) != value:
                raise MetricadError(
                    f"{path}: trained with {key}={arch.get(key)!r} but params.yaml asks for "
                    f"{value!r}; re-run `dvc repro train`"
                )
    model = model_from_arch(arch)
    _load_state(model, checkpoint.get("state_dict"), path)
    return model.eval(), checkpoint.get("params") or {}


def _load_state(model: torch.nn.Module, state: Any, path: str | Path) -> None:
    """Strict load with an error that names the offending tensors."""
    if not isinstance(state, dict):
        raise MetricadError(f"{path}: the checkpoint holds no state_dict")
    bank = state.get("patches.bank")
    if isinstance(model, AnomalyNet) and model.patches is not None and bank is not None:
        if bank.dim() == 3:  # written before the banks per view: one view's
            bank = bank[None]
            old = {"patches.unit": state["patches.unit"][None]} if "patches.unit" in state else {}
            state = {**state, "patches.bank": bank, **old}
        model.patches.hold(bank.shape)  # the bank's size is the data's (patch_memory.py)
        # Written before the per-position unit existed: its distances were in the unit 1.
        state = {"patches.unit": torch.ones(bank.shape[:2]), **state}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise MetricadError(
            f"{path}: missing tensor(s) {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; refusing to run with random weights there"
        )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise MetricadError(f"{path}: unexpected tensor(s) {', '.join(unexpected[:5])}")
    for key, tensor in expected.items():
        if not isinstance(state[key], torch.Tensor) or state[key].shape != tensor.shape:
            shape = getattr(state[key], "shape", type(state[key]).__name__)
            raise MetricadError(
                f"{path}: tensor {key} has shape {tuple(shape)}, expected {tuple(tensor.shape)}"
            )
    model.load_state_dict(state)


def load_backbone_weights(model: AnomalyNet, weights: str) -> None:
    """Initialise the ResNet18 layers: `none` (random), `imagenet` or a local .pth file."""
    if weights == "none":
        return
    if weights == "imagenet":
        state = _download_imagenet_weights()
    else:
        state = safe_load(weights, "weights file")
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise MetricadError(f"{weights}: not a ResNet18 state_dict")
    backbone_state = {k: v for k, v in state.items() if k.split(".")[0] in BACKBONE_LAYERS}
    _load_state(model.encoder.backbone, backbone_state, weights)


def _download_imagenet_weights() -> dict[str, torch.Tensor]:
    import torchvision  # here only: its import costs every stage 1.7 s (resnet.py)

    entry = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    try:
        return entry.get_state_dict(progress=True)
    except Exception as error:  # urllib, SSL and socket errors all mean the same here
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name
        raise MetricadError(
            f"model.weights: imagenet: could not fetch ResNet18 ImageNet weights "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            f"Offline? Download {entry.url} elsewhere and put it at {cache}, or set "
            f"model.weights to the file's path"
        ) from None
