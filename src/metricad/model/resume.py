"""Resumable training: the state of an unfinished run, and the fingerprint that says whether
a saved state belongs to the run about to start."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch

from metricad.model.checkpoint import safe_load, save_torch_file, trained_with
from metricad.model.recipe import schedule_depends_on_epochs
from metricad.model.training_run import TrainingState
from metricad.params import Params

LIBRARY = Path(__file__).resolve().parents[1]
TRAINING_STATE_FORMAT = "metricad-training-state/1"
# The modules whose code decides the trained weights: a state saved by other training code
# would continue another run. Paths below src/metricad/; a folder is a registry package, every
# module in it (a new entry changes the fingerprint unlisted).
TRAINING_CODE = (
    "model/training.py",
    "model/training_run.py",
    "model/recipe.py",
    "model/torch_model.py",
    "model/resnet.py",
    "model/heads",
    "model/segmentation.py",
    "model/patch_memory.py",
    "model/views",  # imported by torch_model (the patch memory's views)
    "data/anomalies",
    "data/batches.py",
    "data/framing",  # train.augment auto asks the framing
    "portable_math.py",
    "runtime.py",
)


def training_code_files() -> list[Path]:
    """TRAINING_CODE's files, a folder's modules in name order."""
    files = []
    for name in TRAINING_CODE:
        path = LIBRARY / name
        files += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return files


def resume_fingerprint(params: Params, images: torch.Tensor, labels: torch.Tensor) -> str:
    """A state is valid only for the same params, training images, code and torch version.

    The epoch count is left out when the learning rate does not depend on it: then a state
    of a shorter run is where a longer one passes, and the longer run continues from it.
    """
    settings = trained_with(params)
    # The patch memory's views come after the weights (its banks are fitted on the finished
    # network): another choice continues the finished state.
    del settings["model"]["patch_views"]
    if not schedule_depends_on_epochs(params.train):
        del settings["epochs"]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(images.numpy().tobytes())
    digest.update(labels.numpy().tobytes())
    for path in training_code_files():
        digest.update(path.read_bytes())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()


def save_training_state(path: str | Path, state: TrainingState, fingerprint: str) -> None:
    """The resumable state of an unfinished (or finished) run, tagged with what it was run on."""
    save_torch_file(
        {"format": TRAINING_STATE_FORMAT, "fingerprint": fingerprint, **dataclasses.asdict(state)},
        path,
    )


def load_training_state(path: str | Path, fingerprint: str, epochs: int) -> TrainingState | None:
    """The saved state if it belongs to this run (same params and data) and has not trained
    past its `epochs`, else None."""
    if not Path(path).is_file():
        return None
    saved = safe_load(path, "training state")
    if not isinstance(saved, dict) or saved.get("format") != TRAINING_STATE_FORMAT:
        return None
    if saved.get("fingerprint") != fingerprint:
        return None
    if saved.get("epoch", epochs + 1) > epochs:
        return None
    return training_state_from(saved)


def training_state_from(saved: dict) -> TrainingState:
    """The TrainingState held in a loaded state file (save_training_state's record)."""
    fields = {f.name for f in dataclasses.fields(TrainingState)}
    return TrainingState(**{name: saved[name] for name in fields})
