"""models/scorer.npz: a fitted ScoringHead on disk, its buffers as arrays and the rest as one
JSON record, read without pickle."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metricad.errors import MetricadError
from metricad.files import atomic_path
from metricad.scoring.head import ScoringHead

SCORER_FORMAT = "metricad-scorer/3"
_EXTRA = "._extra_state"


def read_embedding_settings(path: str | Path) -> dict[str, Any]:
    """How embed computed the embeddings (its settings.json: views, batch size), checked."""
    path = Path(path)
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetricadError(f"{path}: not found (run `dvc repro embed`)") from None
    except (OSError, ValueError) as error:
        raise MetricadError(f"{path}: not readable ({error})".splitlines()[0]) from None
    if not isinstance(settings, dict) or not {"views", "batch_size"} <= set(settings):
        raise MetricadError(f"{path}: lacks views or batch_size (run `dvc repro embed`)")
    return settings


def save_scoring(path: str | Path, head: ScoringHead, embedding: dict[str, Any]) -> None:
    """models/scorer.npz: the head's buffers as arrays; names, extra state and `embedding` (how
    the embeddings it was fitted on were computed: views, batch size) as JSON."""
    state = head.state_dict()
    record = {
        "format": SCORER_FORMAT,
        "embedding": embedding,
        "names": list(head.names),
        "verdict": head.verdict,
        "extra": {k.removesuffix(_EXTRA): v for k, v in state.items() if k.endswith(_EXTRA)},
    }
    arrays = {k: v.numpy() for k, v in state.items() if not k.endswith(_EXTRA)}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, record=np.array(json.dumps(record, sort_keys=True)), **arrays)


def load_scoring(path: str | Path) -> ScoringHead:
    """The saved head, in eval mode; one-line errors for a missing, broken or foreign file."""
    return read_scoring(path)[0]


def read_scoring(path: str | Path) -> tuple[ScoringHead, dict[str, Any]]:
    """The saved head, in eval mode, and its embedding settings (views, batch size)."""
    path = Path(path)
    if not path.is_file():
        raise MetricadError(f"{path}: scorer not found (run `dvc repro score`)")
    try:
        with np.load(path) as stored:  # numpy refuses pickled objects by default
            arrays = {name: stored[name] for name in stored.files}
        record = json.loads(str(arrays.pop("record")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MetricadError(f"{path}: not a readable scorer ({reason})") from None
    if not isinstance(record, dict) or record.get("format") != SCORER_FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise MetricadError(
            f"{path}: written by another metricad version (format {found!r}, this version "
            f"reads {SCORER_FORMAT!r}); run `dvc repro score`"
        )
    head = ScoringHead(record["names"], record["verdict"])
    for key, array in arrays.items():
        owner, _, name = key.rpartition(".")
        setattr(head.get_submodule(owner) if owner else head, name, torch.from_numpy(array))
    for owner, extra in record["extra"].items():
        head.get_submodule(owner).set_extra_state(extra)
    return head.eval(), record["embedding"]
