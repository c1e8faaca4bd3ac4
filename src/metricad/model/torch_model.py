"""The network: ResNet18 encoder -> 512-d embedding, and the metric-learning heads, and the
factory that builds it from params or from a checkpoint's architecture record.

Pure torch modules, no file I/O (weights and checkpoints live in checkpoint.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from metricad.data.framing import resized_side, training_augments, training_crop
from metricad.model.heads import HEADS, CosineHead
from metricad.model.patch_memory import PATCH_TAPS, PatchMemory
from metricad.model.resnet import BACKBONE_LAYERS, resnet18_layers
from metricad.model.segmentation import SEGMENTATION_TAPS, SegmentationHead, map_image_score
from metricad.model.views import VIEWS
from metricad.params import Params

CLASSES = ("good", "anomalous")
# The backbone maps the segmentation head and the patch memory read.
TAPS = tuple(sorted({*SEGMENTATION_TAPS, *PATCH_TAPS}))
# Variance floor of ImageStandardization, in units of the normalised input (about 1 per image).
STANDARDIZATION_FLOOR = 1e-6

# exp, sqrt: portable_math's (MKL's vector math differs by CPU vendor). nn.Dropout2d draws
# its mask with MKL's random streams, which do too: ChannelDropout uses torch.rand.


class ChannelDropout(nn.Module):
    """Dropout2d (zero whole channels in training, scale the rest by 1/(1-p)) with a mask
    from torch.rand rather than bernoulli_ (MKL's random streams on the CPU)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        drawn = torch.rand(x.shape[0], x.shape[1], 1, 1, device=x.device)
        return x * ((drawn < keep).to(x.dtype) / keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ImageStandardization(nn.Module):
    """Each image's channels shifted and scaled to mean 0 and variance 1 over its pixels: a
    photo taken under brighter or dimmer light, or with more or less contrast, gives the same
    input, while a scratch, which changes a few pixels, still shows."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.mean(dim=(2, 3), keepdim=True)
        centred = images - mean
        variance = centred.square().mean(dim=(2, 3), keepdim=True)
        # The floor keeps a blank image (variance 0) finite; rsqrt: ATen's own kernel.
        return centred * torch.rsqrt(variance + STANDARDIZATION_FLOOR)


class Encoder(nn.Module):
    """(Per-image standardisation ->) ResNet18 conv1..layer4 -> BatchNorm2d -> Dropout2d -> neck
    -> Linear -> BatchNorm1d.

    The article's neck ("flatten") gives the Linear layer the whole layer4 map, each position
    its own weights, so the encoder is built for one input size. "avgpool" averages the map
    over its positions first (ResNet's own head): a defect counts the same wherever it lies.
    """

    def __init__(
        self,
        input_size: int,
        embedding_dim: int = 512,
        dropout: float = 0.5,
        neck: str = "flatten",
        standardize: bool = False,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.standardize = ImageStandardization() if standardize else nn.Identity()
        self.backbone = nn.Sequential(resnet18_layers())
        # Probe the output shape in eval mode: a train-mode pass would move BatchNorm statistics.
        self.backbone.eval()
        with torch.no_grad():
            channels, height, width = self.backbone(torch.zeros(1, 3, input_size, input_size))[
                0
            ].shape
        self.backbone.train()
        if neck == "avgpool":
            pooling, features = [nn.AdaptiveAvgPool2d(1)], channels
        elif neck == "flatten":
            pooling, features = [], channels * height * width
        else:
            raise ValueError(f"unknown neck {neck!r}")
        self.neck = nn.Sequential(
            nn.BatchNorm2d(channels),
            ChannelDropout(dropout),
            *pooling,
            nn.Flatten(),
            nn.Linear(features, embedding_dim),
            nn.BatchNorm1d(embedding_dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(self.standardize(images)))

    def with_taps(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The embedding and the maps of the backbone layers in TAPS by name, one pass."""
        taps = self.taps(images, (*TAPS, BACKBONE_LAYERS[-1]))
        return self.neck(taps.pop(BACKBONE_LAYERS[-1])), taps

    def taps(self, images: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The maps of the backbone layers in `names`, the backbone run only as far as they."""
        taps, x = {}, self.standardize(images)
        for name, module in self.backbone.named_children():
            x = module(x)
            if name in names:
                taps[name] = x
            if len(taps) == len(names):
                return taps
        raise ValueError(f"the backbone has no layer among {names}")


class AnomalyNet(nn.Module):
    """Encoder + metric head (+ segmentation head) (+ patch memory). `forward` gives class
    logits (scale * cos); `embed` the embedding; `embed_and_scores` the embedding and the
    network's own image scores; `heat_maps` where the anomaly is."""

    def __init__(
        self,
        encoder: Encoder,
        head: CosineHead,
        segmenter: SegmentationHead | None = None,
        patches: PatchMemory | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.segmenter = segmenter
        self.patches = patches

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def own_score_names(self) -> list[str]:
        """The image scores `embed_and_scores` gives, by the parts this network has."""
        parts = (("map", self.segmenter), ("patch", self.patches))
        return [name for name, part in parts if part is not None]

    def heat_map_names(self) -> list[str]:
        """The maps `heat_maps` gives, by the parts this network has."""
        parts = (("segmentation", self.segmenter), ("patch", self.patches))
        return [name for name, part in parts if part is not None]

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(images), labels)

    def _segmentation_logits(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.segmenter([taps[name] for name in SEGMENTATION_TAPS])

    def forward_with_map(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits and the segmentation logits (N, H/4, W/4) of one backbone pass."""
        if self.segmenter is None:
            raise ValueError("this network has no segmentation head (model.segmentation)")
        embedding, taps = self.encoder.with_taps(images)
        return self.head(embedding, labels), self._segmentation_logits(taps)

    def anomaly_map(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W) in [0, 1]: the segmentation head's probability of "anomalous" at each
        pixel of the input, upsampled bilinearly."""
        _, logits = self.forward_with_map(images)
        return self._upsampled_map(logits, images)

    @staticmethod
    def _upsampled_map(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(
            logits[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False
        )
        return torch.sigmoid(upsampled[:, 0])

    def patch_vectors(self, images: torch.Tensor) -> torch.Tensor:
        """The patch memory's vectors (N, C, H/4, W/4) of normalised images."""
        return PatchMemory.features(self.encoder.taps(images, PATCH_TAPS))

    def patch_distances(
        self, images: torch.Tensor, known: dict[int, dict[str, torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """(N, h, w): the patch memory's distances of normalised images, the mean over the
        views it holds a bank of, each view's map in the image's frame (PatchMemory). `known`:
        backbone taps already computed, by view number (the first view is the image itself)."""
        view_set, maps = VIEWS[self.patches.view_set], []
        for view, pixels in enumerate(view_set.of(images)):
            taps = (known or {}).get(view) or self.encoder.taps(pixels, PATCH_TAPS)
            distances = self.patches.distances(PatchMemory.features(taps), view)
            maps.append(view_set.back(distances, view))
        return PatchMemory.view_mean(maps)

    def embed_and_scores(
        self, images: torch.Tensor, views: str = "single"
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The embedding of each of the `views` (N, V, D) of normalised images (model/views/,
        in the set's order) and the network's own image scores (N,): `map` (the mean of the
        views' map_image_score of the segmentation map) and `patch` (the largest of the patch
        memory's distances, over its own views), each where the network has the part. One
        backbone pass per view; the memory's views share them when the sets are the same."""
        embeddings, map_scores, known = [], [], {}
        shared = self.patches is not None and self.patches.view_set == views
        for view, pixels in enumerate(VIEWS[views].of(images)):
            if self.segmenter is None and self.patches is None:
                embeddings.append(self.embed(pixels))
                continue
            embedding, taps = self.encoder.with_taps(pixels)
            embeddings.append(embedding)
            if self.segmenter is not None:
                segmentation = self._upsampled_map(self._segmentation_logits(taps), pixels)
                map_scores.append(map_image_score(segmentation))
            if view == 0 or shared:
                known[view] = taps
        scores = {}
        if map_scores:
            scores["map"] = torch.stack(map_scores).mean(dim=0)
        if self.patches is not None:
            scores["patch"] = self.patch_distances(images, known).flatten(1).amax(dim=1)
        return torch.stack(embeddings, dim=1), scores

    def heat_maps(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network's own maps (N, H, W) in [0, 1] of normalised images: `segmentation` (of
        the image as it is) and `patch` (PatchMemory.heat_map of patch_distances), each where
        the network has the part. The backbone runs only as far as the parts' taps."""
        taps = self.encoder.taps(images, TAPS if self.segmenter is not None else PATCH_TAPS)
        maps = {}
        if self.segmenter is not None:
            maps["segmentation"] = self._upsampled_map(self._segmentation_logits(taps), images)
        if self.patches is not None:
            distances = self.patch_distances(images, {0: taps})
            maps["patch"] = self.patches.heat_map(distances, images.shape[-2:])
        return maps


def build_model(
    input_size: int,
    embedding_dim: int = 512,
    head: str = "adacos",
    num_classes: int = 2,
    dropout: float = 0.5,
    neck: str = "flatten",
    segmentation: bool = False,
    standardize: bool = False,
    patch_memory: bool = False,
    patch_views: str = "single",
    **head_settings: Any,
) -> AnomalyNet:
    """Build the network from its architecture description (the checkpoint's `arch`); the
    heads' own settings, recorded as `<head>_<setting>` (adacos_min_scale, ...), go to the
    chosen registered head."""
    encoder = Encoder(input_size, embedding_dim, dropout, neck, standardize)
    own = HEADS.settings_class(head)
    prefix = f"{head}_"
    settings = {k.removeprefix(prefix): v for k, v in head_settings.items() if k.startswith(prefix)}
    metric_head = HEADS.create(
        head, embedding_dim, num_classes, settings=None if own is None else own(**settings)
    )
    return AnomalyNet(
        encoder,
        metric_head,
        SegmentationHead() if segmentation else None,
        PatchMemory(patch_views) if patch_memory else None,
    )


def arch_from_params(params: Params, framing: str | None = None) -> dict[str, Any]:
    """Everything needed to rebuild the network, as recorded in the checkpoint: every head's
    settings among them (`<head>_<setting>`), so the record has one shape whatever the head;
    the side, model.neck auto and model.patch_views auto as the framing (`framing`: the resize
    stage's choice, None: resize.framing) resolves them (resized_side, neck_for,
    patch_views_for)."""
    model = params.model
    head_settings = {
        f"{name}_{key}": value
        for name in HEADS.names()
        if (settings := HEADS.settings_in(name, model)) is not None
        for key, value in dataclasses.asdict(settings).items()
    }
    return {
        "backbone": "resnet18",
        "input_size": resized_side(params, framing),
        "embedding_dim": model.embedding_dim,
        "head": model.head,
        "neck": neck_for(params, framing),
        "num_classes": len(CLASSES),
        "dropout": model.dropout,
        **head_settings,
        "segmentation": model.segmentation,
        "standardize": model.standardize,
        "patch_memory": model.patch_memory,
        "patch_views": patch_views_for(params, framing),
    }


def neck_for(params: Params, framing: str | None = None) -> str:
    """model.neck, auto resolved: avgpool where training takes random squares, else flatten."""
    if params.model.neck == "auto":
        return "avgpool" if training_crop(params, framing) else "flatten"
    return params.model.neck


def patch_views_for(params: Params, framing: str | None = None) -> str:
    """The view set of model.patch_views, auto resolved: dihedral where training flips and
    turns its images (train.augment, auto following the framing), else single."""
    views = params.model.patch_views
    if views == "auto":
        views = "dihedral" if training_augments(params, framing) else "single"
    return views


def model_from_arch(arch: dict[str, Any]) -> AnomalyNet:
    return build_model(**{k: v for k, v in arch.items() if k != "backbone"})
