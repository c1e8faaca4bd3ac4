"""`dihedral`: the eight flips and quarter turns of an image (the dihedral group), the views
training augments with (data/batches.py: augment), the identity first."""

from __future__ import annotations

import torch

from metricad.model.views.base import VIEWS, ViewSet


def dihedral_views(images: torch.Tensor) -> list[torch.Tensor]:
    """The eight flips and quarter turns of a batch (N, C, H, W), the identity first."""
    mirrored = images.flip(-1)
    return [
        torch.rot90(image, turns, dims=(-2, -1))
        for image in (images, mirrored)
        for turns in range(4)
    ]


VIEWS.register("dihedral")(ViewSet(8, dihedral_views))
