"""Synthetic anomalies in use: one image of a kind, a training batch's share of them, the
fixed sample the pipeline embeds, and which kind training falls back to."""

from __future__ import annotations

import torch

from metricad.data.anomalies.base import ANOMALIES, JITTER, Mixture


def makes_anomalies(kind: str) -> bool:
    """Whether `kind` turns images into anomalies: `none`, the one choice without an entry,
    draws nothing."""
    return kind in ANOMALIES


def drawn_kind(kind: str, generator: torch.Generator) -> str:
    """`kind` itself, or for a Mixture (`mixed`) the part drawn from the generator."""
    entry = ANOMALIES[kind]
    return entry.draw(generator) if isinstance(entry, Mixture) else kind


def synthesize(
    image: torch.Tensor,
    kind: str,
    generator: torch.Generator,
    jitter: float = JITTER,
    pool: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One synthetic anomaly of `kind` (a registered kind) from a good uint8 image; `pool`:
    good images a foreign texture may come from (perlin)."""
    return ANOMALIES[kind](image, generator, jitter, pool)


# What training uses when the params ask for real defects in training but the data has none
# to spare (see kind_for_training).
FALLBACK_KIND = "cutpaste"


def kind_for_training(kind: str, real_anomalies: int, anomalous_train_fraction: float) -> str:
    """The kind of synthetic anomaly training uses: `kind` as configured, or FALLBACK_KIND when
    the params ask for real defects in training (fraction > 0) but the split put none there
    (too few defect images: a defect type with a single image stays in test)."""
    if not makes_anomalies(kind) and real_anomalies == 0 and anomalous_train_fraction > 0:
        return FALLBACK_KIND
    return kind


def corrupt_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    kind: str,
    share: float,
    jitter: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Turn round(share * good images) seeded-random good images of a batch into anomalies;
    return the images, the labels and the masks of the synthetic pixels (N, H, W) bool, on
    the images' device (all False for the images left as they were).

    Real anomalous images stay as they are; with `kind` "none" nothing is drawn, so the
    random stream of a run without synthetic anomalies is unchanged. `images` may live on
    any device; `labels` are read on the CPU (the training loop keeps them there). Foreign
    textures (perlin) come from the batch's own images as they were.
    """
    masks = torch.zeros(len(images), *images.shape[-2:], dtype=torch.bool, device=images.device)
    if not makes_anomalies(kind) or share <= 0:
        return images, labels, masks
    good = torch.nonzero(labels.cpu() == 0).flatten()
    count = round(share * len(good))
    if count == 0:
        return images, labels, masks
    chosen = good[torch.randperm(len(good), generator=generator)[:count]]
    pool, images, labels = images, images.clone(), labels.clone()
    for index in chosen.tolist():
        images[index], mask = synthesize(pool[index], kind, generator, jitter, pool)
        masks[index] = mask.to(images.device)
        labels[index] = 1
    return images, labels, masks


def synthetic_sample(
    images: torch.Tensor, count: int, kind: str, jitter: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, list[int], list[str]]:
    """A fixed, seeded sample of `count` synthetic anomalies made from `images` (good, uint8).

    Returns the anomalies (N, 3, H, W), their masks (N, H, W), the index of each one's source
    image and the kind drawn (for `mixed`). Sources cycle through a seeded permutation, so
    every good image is used before any is used twice. `kind` "none" gives an empty sample.
    """
    size = images.shape[-2:]
    if not makes_anomalies(kind) or count == 0 or len(images) == 0:
        empty = torch.zeros(0, 3, *size, dtype=torch.uint8)
        return empty, torch.zeros(0, *size, dtype=torch.bool), [], []
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator).tolist()
    anomalies, masks, sources, kinds = [], [], [], []
    for n in range(count):
        source = order[n % len(order)]
        drawn = drawn_kind(kind, generator)
        anomaly, mask = synthesize(images[source], drawn, generator, jitter, images)
        anomalies.append(anomaly)
        masks.append(mask)
        sources.append(source)
        kinds.append(drawn)
    return torch.stack(anomalies), torch.stack(masks), sources, kinds
