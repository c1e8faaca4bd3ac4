"""The embedding of an image as every stage after training sees it: of the image as it is, or
averaged over its eight flips and quarter turns (the dihedral group, the views training
augments with), so that a texture's embedding no longer depends on which way up it lies."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from metricad.model.torch_model import AnomalyNet
from metricad.params import Views


def dihedral_views(images: torch.Tensor) -> list[torch.Tensor]:
    """The eight flips and quarter turns of a batch (N, C, H, W), the identity first; the same
    eight as training's augmentation (data/batches.py: augment)."""
    mirrored = images.flip(-1)
    return [
        torch.rot90(image, turns, dims=(-2, -1))
        for image in (images, mirrored)
        for turns in range(4)
    ]


def view_embedding(model: AnomalyNet, images: torch.Tensor, views: Views) -> torch.Tensor:
    """The embedding (N, D) of normalised images: `single`, the network's own; `dihedral`, the
    mean of the unit embeddings of the eight views (each view weighs the same whatever its
    length; the scores and the cosine head normalise the mean again)."""
    if views == "single":
        return model.embed(images)
    units = [F.normalize(model.embed(view).float(), dim=1) for view in dihedral_views(images)]
    return torch.stack(units).mean(dim=0)
