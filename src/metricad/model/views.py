"""The views of an image that every stage after training embeds: the image as it is, or its
eight flips and quarter turns (the dihedral group, the views training augments with). With
views, an image's embedding is (V, D), the scores are fitted on every view of the good
training images and an image's score is the mean of its views' scores (scoring/head.py), so
a texture's score no longer depends on which way up it lies."""

from __future__ import annotations

import torch

from metricad.model.torch_model import AnomalyNet
from metricad.params import Views

DIHEDRAL_VIEWS = 8


def dihedral_views(images: torch.Tensor) -> list[torch.Tensor]:
    """The eight flips and quarter turns of a batch (N, C, H, W), the identity first; the same
    eight as training's augmentation (data/batches.py: augment)."""
    mirrored = images.flip(-1)
    return [
        torch.rot90(image, turns, dims=(-2, -1))
        for image in (images, mirrored)
        for turns in range(4)
    ]


def view_embeddings(model: AnomalyNet, images: torch.Tensor, views: Views) -> torch.Tensor:
    """The embeddings of normalised images: `single`, the network's own (N, D); `dihedral`,
    one per view (N, 8, D), the identity first."""
    if views == "single":
        return model.embed(images)
    return torch.stack([model.embed(view) for view in dihedral_views(images)], dim=1)


def view_map_scores(model: AnomalyNet, images: torch.Tensor, views: Views) -> torch.Tensor:
    """The segmentation head's image score (N,) of normalised images: with views, the mean of
    the views' scores."""
    if views == "single":
        return model.map_score(images)
    return torch.stack([model.map_score(view) for view in dihedral_views(images)]).mean(dim=0)


def view_probabilities(model: AnomalyNet, embeddings: torch.Tensor) -> torch.Tensor:
    """The class probabilities (N, C) of embeddings (N, D) or (N, V, D): with views, the mean
    of the views' softmax probabilities."""
    flat = embeddings.flatten(0, -2)
    probabilities = torch.softmax(model.head(flat), dim=1)
    return (
        probabilities.unflatten(0, embeddings.shape[:-1]).mean(dim=1)
        if embeddings.dim() == 3
        else probabilities
    )
