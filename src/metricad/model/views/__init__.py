"""The views of an image that every stage after training embeds, one view set per module:
`single` (the image as it is, the article's) and `dihedral` (its eight flips and quarter
turns, the views training augments with). An image's embedding is always (V, D), V views;
the scores are fitted on every view of the good training images and an image's score is the
mean of its views' scores (scoring/head.py), so with `dihedral` a texture's score no longer
depends on which way up it lies; a patch memory (model.patch_memory) keeps a bank per view and
averages its views' maps in the image's frame (`ViewSet.back`). The network runs the views
(AnomalyNet.embed_and_scores). Adding a view set: docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from metricad.model.views.base import VIEWS, ViewSet
from metricad.registry import import_entries

if TYPE_CHECKING:  # torch_model builds the network, which the params check must not wait for
    from metricad.model.torch_model import AnomalyNet

__all__ = ["VIEWS", "ViewSet", "view_probabilities"]

import_entries(__name__, __path__)


def view_probabilities(model: AnomalyNet, embeddings: torch.Tensor) -> torch.Tensor:
    """The class probabilities (N, C) of embeddings (N, V, D): the mean of the views'
    softmax probabilities."""
    probabilities = torch.softmax(model.head(embeddings.flatten(0, 1)), dim=1)
    return probabilities.unflatten(0, embeddings.shape[:2]).mean(dim=1)
