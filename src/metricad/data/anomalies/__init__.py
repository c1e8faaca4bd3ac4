"""Synthetic training anomalies made from good images, one kind per module: CutPaste,
CutPaste-scar, noise blends, DRAEM's Perlin-noise anomalies, and `mixed` (one of the first
three per image). `none` is no entry: nothing is drawn.

CutPaste, scar and noise move a piece of the image itself to another place and change its
colour a little, so the network learns "something here does not belong" without ever seeing a
real defect (Li et al., CutPaste, CVPR 2021; the noise-shaped blend follows DRAEM, Zavrtanik
et al. 2021, with the image's own texture). `perlin` is DRAEM's recipe without its download:
Perlin-noise blobs filled with a foreign texture, kept on the object.

Each module registers its maker under its `train.synthetic_anomalies` name: a function
(image, generator, jitter, pool) -> (image, mask), or a Mixture that draws one of other
entries per image. Every draw comes from the torch.Generator passed in, so a seed gives the
same anomalies (and a resumed training run draws what an uninterrupted one would). Images are
uint8 tensors (3, H, W); the mask (H, W) bool marks every pixel that may have changed.
Adding a kind: docs/architecture.md.
"""

from __future__ import annotations

from metricad.data.anomalies.base import ANOMALIES
from metricad.data.anomalies.batch import (
    corrupt_batch,
    kind_for_training,
    makes_anomalies,
    synthesize,
    synthetic_sample,
)
from metricad.registry import import_entries

__all__ = [
    "ANOMALIES",
    "corrupt_batch",
    "kind_for_training",
    "makes_anomalies",
    "synthesize",
    "synthetic_sample",
]

import_entries(__name__, __path__)
