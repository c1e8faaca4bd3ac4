"""A screen of patch scores on a trained network (issue 31: PatchCore and PaDiM on our own
network), run in a workspace after `dvc repro` (models/model.pt, data/resized/): the good
training images' feature vectors at each position of backbone layers (each averaged over its
3x3 neighbourhood, the coarser layer upsampled to the finer one's grid, concatenated) are
the bank; a test image's score is the largest, over its positions, distance to the nearest
bank vector. `global`: the nearest among every position's vectors (PatchCore, unaligned
objects); `per position`: among the vectors at the same position and its 8 neighbours only
(objects framed to one pose: resize.framing). Not part of the pipeline; float32, so the last
bits depend on the CPU.

    python scripts/patch_screen.py [WORKSPACE] [--taps layer1,layer2 layer2,layer3] [--random]
    python scripts/patch_screen.py [WORKSPACE] --units [--model MODEL.pt]
    python scripts/patch_screen.py [WORKSPACE] --sides 128 192 256 [--model MODEL.pt]
    python scripts/patch_screen.py [WORKSPACE] --pools [--taps layer1,layer2 layer2,layer3]
    python scripts/patch_screen.py [WORKSPACE] --pools --views [--taps layer1,layer2]

`--random`: the same architecture with fresh random weights (what training adds). `--units`:
the pipeline's patch memory (layer1 + layer2, per position) with each position's distance in
a unit of its own, from the good training images' leave-one-out distances there (their
largest: `max`; its geometric mean with the median over positions: `half power`, what
PatchMemory.fit keeps; the 99th percentile; a z-score), against none; `--model`: another
network of the same data (a stored model from the DVC cache), instead of the workspace's.
`--sides`: the pipeline's patch memory with the source photos resized (as the resize stage
does, framing `whole` only) to each side instead of resize.size, through the same network
(its backbone is convolutional; what a network trained at one side sees at another), and the
largest mean over 2 x 2 neighbouring positions (a speck of one position counts less), the
geometric mean of each side's map with the first side's; then, per side, the three good test
photos that score highest beside the defects' median.
`--pools`: the pipeline's patch memory (its unit included) on each of `--taps`, with the image
score taken from the map in other ways than its largest position: the largest mean over 2 x 2
positions, the largest after a Gaussian blur of the map (sigma in positions, as PatchCore
blurs its map), and the mean of the k largest positions (a speck of one position counts less,
a defect of several does not); then, per way, the three good test photos that score highest.
`--views`: the map the mean over the 8 flips and quarter turns of the photos (each view with a
bank of its own, each view's map turned back), printed as the views accumulate, each view's
own beside it: test-time augmentation of the patch memory.
"""

from __future__ import annotations

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from metricad.data.batches import normalize
from metricad.data.images import load_rgb, resize_rgb
from metricad.model.checkpoint import read_checkpoint, safe_load
from metricad.model.patch_memory import PATCH_TAPS, PatchMemory
from metricad.model.torch_model import AnomalyNet, model_from_arch
from metricad.model.views.dihedral import dihedral_back, dihedral_views
from metricad.paths import MODEL, PREPARED_MANIFEST, RESIZED_MANIFEST

GLOBAL_BANK = 20000  # vectors drawn from the whole bank for the global score


@torch.inference_mode()
def patch_features(model: AnomalyNet, images: torch.Tensor, taps: list[str]) -> torch.Tensor:
    """(N, C, h, w): the taps' maps, each averaged over 3x3, on the first tap's grid."""
    batches = []
    for start in range(0, len(images), 32):
        x = model.encoder.standardize(normalize(images[start : start + 32]))
        maps = {}
        for name, module in model.encoder.backbone.named_children():
            x = module(x)
            if name in taps:
                maps[name] = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
            if len(maps) == len(taps):
                break
        grid = maps[taps[0]].shape[-2:]
        batches.append(
            torch.cat(
                [
                    F.interpolate(maps[t], size=grid, mode="bilinear", align_corners=False)
                    for t in taps
                ],
                dim=1,
            )
        )
    return torch.cat(batches)


def _squared_distances(queries: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """(Q, B) squared distances between rows."""
    return (
        queries.square().sum(1, keepdim=True) - 2 * queries @ bank.T + bank.square().sum(1)[None]
    ).clamp_min(0)


def global_scores(train: torch.Tensor, test: torch.Tensor) -> np.ndarray:
    channels = train.shape[1]
    bank = train.permute(0, 2, 3, 1).reshape(-1, channels)
    drawn = torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[:GLOBAL_BANK]
    bank = bank[drawn]
    scores = [
        _squared_distances(image.reshape(channels, -1).T, bank).min(1).values.max().sqrt()
        for image in test
    ]
    return torch.stack(scores).numpy()


def per_position_scores(train: torch.Tensor, test: torch.Tensor) -> np.ndarray:
    """Nearest among the bank vectors at the same position and its 8 neighbours."""
    height, width = train.shape[-2:]
    best = torch.full((len(test), height, width), float("inf"))
    queries = test.permute(2, 3, 0, 1)  # h, w, T, C
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            # the bank shifted so that position (y, x) holds the vectors of (y + dy, x + dx)
            ys = slice(max(0, -dy), height - max(0, dy))
            xs = slice(max(0, -dx), width - max(0, dx))
            ys_bank = slice(max(0, dy), height - max(0, -dy))
            xs_bank = slice(max(0, dx), width - max(0, -dx))
            bank = train[:, :, ys_bank, xs_bank].permute(2, 3, 0, 1)  # h', w', N, C
            query = queries[ys, xs]  # h', w', T, C
            distances = (
                query.square().sum(-1, keepdim=True)
                - 2 * query @ bank.transpose(-1, -2)
                + bank.square().sum(-1)[:, :, None, :]
            ).clamp_min(0)  # h', w', T, N
            nearest = distances.min(-1).values.permute(2, 0, 1)  # T, h', w'
            best[:, ys, xs] = torch.minimum(best[:, ys, xs], nearest)
    return best.flatten(1).max(1).values.sqrt().numpy()


@torch.inference_mode()
def unit_screen(model: AnomalyNet, train: torch.Tensor, test: torch.Tensor) -> dict:
    """{unit: the test images' scores} for the units of `--units`."""
    good = torch.cat([model.patch_vectors(normalize(b)) for b in train.split(64)])
    memory = PatchMemory()
    memory.fit([good])
    memory.unit = torch.ones_like(memory.unit)  # raw distances below
    vectors = [model.patch_vectors(normalize(b)) for b in test.split(64)]
    found = torch.cat([memory.distances(v) for v in vectors])
    left_out = memory.left_out_distances(good)
    # Clamped as PatchMemory.fit clamps: a photo's plain ground never varies (0 / 0).
    spread, mean = left_out.amax(0).clamp_min(1e-6), left_out.mean(0)
    sd, high = left_out.std(0).clamp_min(1e-6), left_out.quantile(0.99, dim=0).clamp_min(1e-6)
    units = {
        "none": found,
        "max": found / spread,
        "half power": found / (spread * spread.median()).sqrt(),
        "99th percentile": found / high,
        "z-score": (found - mean) / sd,
    }
    return {name: maps.flatten(1).amax(1).numpy() for name, maps in units.items()}


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, h, w) blurred with a Gaussian of `sigma` positions (reflected border)."""
    radius = max(1, round(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1) / sigma) ** 2)
    taps = taps / taps.sum()
    padded = F.pad(maps[:, None], (radius,) * 4, mode="reflect")
    rows = F.conv2d(padded, taps.reshape(1, 1, 1, -1))
    return F.conv2d(rows, taps.reshape(1, 1, -1, 1))[:, 0]


def largest_2x2(maps: torch.Tensor) -> torch.Tensor:
    """(N,): each map's largest mean over 2 x 2 neighbouring positions."""
    return F.avg_pool2d(maps[:, None], 2, 1).flatten(1).amax(1)


def pooled_scores(maps: torch.Tensor) -> dict[str, np.ndarray]:
    """{way: the image scores} of the distance maps (N, h, w) for `--pools`."""
    flat = maps.flatten(1)
    scores = {"max": flat.amax(1), "2x2": largest_2x2(maps)}
    for sigma in (0.5, 1.0, 2.0, 4.0):
        scores[f"blur {sigma:g}"] = gaussian_blur(maps, sigma).flatten(1).amax(1)
    for count in (4, 16, 64):
        scores[f"top {count}"] = flat.topk(count, dim=1).values.mean(1)
    return {way: found.numpy() for way, found in scores.items()}


@torch.inference_mode()
def view_maps(
    model: AnomalyNet, train: torch.Tensor, test: torch.Tensor, taps: list[str], views: int
) -> Iterator[torch.Tensor]:
    """The test images' distance maps (N, h, w), one per view of the first `views` of the 8
    flips and quarter turns (dihedral_views, the identity first), each turned back: each
    view's bank holds the same view of the good training images."""
    pairs = zip(dihedral_views(train), dihedral_views(test), strict=True)
    for view, (good, query) in enumerate(pairs):
        if view == views:
            return
        memory = PatchMemory()
        memory.fit([patch_features(model, good, taps)])
        vectors = patch_features(model, query, taps)
        yield dihedral_back(torch.cat([memory.distances(v) for v in vectors.split(32)]), view)


def aurocs(found: dict[str, np.ndarray], labels: np.ndarray) -> str:
    """Each way's image AUROC, on one line."""
    return ", ".join(f"{way} {roc_auc_score(labels, scores):.4f}" for way, scores in found.items())


def report(found: dict[str, np.ndarray], labels: np.ndarray, names: np.ndarray) -> None:
    """Each way's AUROC, then its three highest good test photos beside the defects' median."""
    print(aurocs(found, labels))
    good = np.flatnonzero(labels == 0)
    for way, scores in found.items():
        top = good[np.argsort(-scores[good])[:3]]
        highest = ", ".join(f"{names[i]} {scores[i]:.2f}" for i in top)
        median = np.median(scores[labels == 1])
        print(f"  {way}: highest good {highest}; median defect {median:.2f}")


@torch.inference_mode()
def side_screen(
    model: AnomalyNet, train: list[np.ndarray], test: list[np.ndarray], sides: list[int]
) -> dict[str, np.ndarray]:
    """{side, or "first x side": the test images' scores} for `--sides`."""
    maps = {}
    for side in sides:

        def vectors(photos: list[np.ndarray], side: int = side) -> torch.Tensor:
            resized = np.stack([resize_rgb(photo, side) for photo in photos])
            images = torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()
            return patch_features(model, images, list(PATCH_TAPS))

        memory = PatchMemory()
        memory.fit([vectors(train)])
        maps[side] = torch.cat([memory.distances(v) for v in vectors(test).split(32)])
    first = maps[sides[0]]
    scores = {str(side): found.flatten(1).amax(1).numpy() for side, found in maps.items()}
    for side, found in maps.items():
        scores[f"{side} 2x2"] = largest_2x2(found).numpy()
    for side in sides[1:]:
        upsampled = F.interpolate(first[:, None], size=maps[side].shape[-2:], mode="bilinear")
        combined = (upsampled[:, 0] * maps[side]).sqrt()
        scores[f"{sides[0]} x {side}"] = combined.flatten(1).amax(1).numpy()
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", nargs="?", type=Path, default=Path("."))
    parser.add_argument("--taps", nargs="+", default=["layer1,layer2", "layer2,layer3"])
    parser.add_argument("--random", action="store_true", help="fresh random weights instead")
    parser.add_argument("--units", action="store_true", help="the per-position units instead")
    parser.add_argument("--sides", type=int, nargs="+", help="the patch pass at these sides")
    parser.add_argument("--pools", action="store_true", help="other image scores of the map")
    parser.add_argument("--views", action="store_true", help="--pools over the 8 views")
    parser.add_argument("--model", type=Path, help="default: WORKSPACE/models/model.pt")
    args = parser.parse_args()
    model, _ = read_checkpoint(args.model or args.workspace / MODEL)
    if args.random:
        torch.manual_seed(0)
        model = model_from_arch(safe_load(args.workspace / MODEL, "checkpoint")["arch"]).eval()
    manifest = pd.read_csv(args.workspace / RESIZED_MANIFEST, keep_default_na=False)

    def images(rows: pd.DataFrame) -> torch.Tensor:
        loaded = np.stack([load_rgb(args.workspace / path) for path in rows["path"]])
        return torch.from_numpy(loaded).permute(0, 3, 1, 2).contiguous()

    train_rows = manifest[(manifest["split"] == "train") & (manifest["label"] == 0)]
    test_rows = manifest[manifest["split"] == "test"]
    labels = test_rows["label"].to_numpy()
    if args.sides:
        prepared = pd.read_csv(args.workspace / PREPARED_MANIFEST, keep_default_na=False)
        source = dict(zip(prepared["name"], prepared["path"], strict=True))

        def photos(rows: pd.DataFrame) -> list[np.ndarray]:
            return [load_rgb(args.workspace / source[name]) for name in rows["name"]]

        found = side_screen(model, photos(train_rows), photos(test_rows), args.sides)
        report(found, labels, test_rows["name"].to_numpy())
        return
    if args.pools:
        names, train, test = test_rows["name"].to_numpy(), images(train_rows), images(test_rows)
        for taps in args.taps:
            print(f"{taps}:", flush=True)
            maps = view_maps(model, train, test, taps.split(","), 8 if args.views else 1)
            if not args.views:
                report(pooled_scores(next(maps)), labels, names)
                continue
            total = 0
            for count, found in enumerate(maps, start=1):
                total = total + found
                alone = {f"{way} alone": s for way, s in pooled_scores(found).items()}
                mean = {**pooled_scores(total / count), **alone}
                print(f"  {count} views: {aurocs(mean, labels)}", flush=True)
        return
    if args.units:
        found = unit_screen(model, images(train_rows), images(test_rows))
        print(aurocs(found, labels))
        return
    for taps in args.taps:
        started = time.perf_counter()
        names = taps.split(",")
        train = patch_features(model, images(train_rows), names)
        test = patch_features(model, images(test_rows), names)
        found = {
            "global": roc_auc_score(labels, global_scores(train, test)),
            "per position": roc_auc_score(labels, per_position_scores(train, test)),
        }
        figures = ", ".join(f"{name} {value:.3f}" for name, value in found.items())
        print(f"{taps}: image AUROC {figures} ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
