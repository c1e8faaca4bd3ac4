"""Resumable training: the state of an unfinished run, and the fingerprint that says whether
a saved state belongs to the run about to start."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from metricad.checkpoint import safe_load, save_torch_file
from metricad.params import Params, trained_with

TRAINING_STATE_FORMAT = "metricad-training-state/1"
# The modules whose code decides the trained weights: a state saved by other training code
# would continue another run.
TRAINING_CODE = ("training.py", "torch_model.py", "anomalies.py", "data.py", "runtime.py")


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    shuffle_rng: torch.Tensor
    torch_rng: torch.Tensor
    history: list[dict[str, float]]
    average: dict[str, torch.Tensor] | None = None  # the weight average, when there is one


def resume_fingerprint(params: Params, images: torch.Tensor, labels: torch.Tensor) -> str:
    """A state is valid only for the same params, training images, code and torch version."""
    digest = hashlib.sha256(json.dumps(trained_with(params), sort_keys=True).encode())
    digest.update(images.numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    for name in TRAINING_CODE:
        digest.update(Path(__file__).with_name(name).read_bytes())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()


def save_training_state(path: str | Path, state: TrainingState, fingerprint: str) -> None:
    """The resumable state of an unfinished (or finished) run, tagged with what it was run on."""
    save_torch_file(
        {"format": TRAINING_STATE_FORMAT, "fingerprint": fingerprint, **dataclasses.asdict(state)},
        path,
    )


def load_training_state(path: str | Path, fingerprint: str) -> TrainingState | None:
    """The saved state if it belongs to this exact run (same params and data), else None."""
    if not Path(path).is_file():
        return None
    saved = safe_load(path, "training state")
    if not isinstance(saved, dict) or saved.get("format") != TRAINING_STATE_FORMAT:
        return None
    if saved.get("fingerprint") != fingerprint:
        return None
    fields = {f.name for f in dataclasses.fields(TrainingState)}
    return TrainingState(**{name: saved[name] for name in fields})
