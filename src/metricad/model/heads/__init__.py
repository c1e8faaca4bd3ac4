"""The metric heads, one per module, registered under their `model.head` names: AdaCos
(adacos.py, the article's) and ArcFace (arcface.py). Each is a CosineHead (class centres on
the unit sphere, logits scale * cos) built as `Head(embedding_dim, classes, settings)`, its
settings dataclass registered with it (`model.<head>` in params.yaml). Pure torch, no I/O."""

from __future__ import annotations

from metricad.model.heads.base import HEADS, CosineHead
from metricad.registry import import_entries

__all__ = ["HEADS", "CosineHead"]

import_entries(__name__, __path__)
