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


def dihedral_back(maps: torch.Tensor, view: int) -> torch.Tensor:
    """Maps (N, h, w) of view number `view` of dihedral_views in the unturned image's frame:
    the quarter turns undone, then the mirror."""
    mirrored, turns = divmod(view, 4)
    unturned = torch.rot90(maps, -turns, dims=(-2, -1))
    return unturned.flip(-1) if mirrored else unturned


VIEWS.register("dihedral")(ViewSet(8, dihedral_views, dihedral_back))
