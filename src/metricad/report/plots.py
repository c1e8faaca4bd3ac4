"""Figures: t-SNE maps, GradCAM panels and galleries. Drawing only; callers pick the paths."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.ndimage import binary_erosion  # noqa: E402

from metricad.data.images import save_png  # noqa: E402
from metricad.data.manifest import SYNTHETIC  # noqa: E402
from metricad.files import atomic_path  # noqa: E402

MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")
CLASS_COLOURS = {0: "#1f77b4", 1: "#d62728"}
# The synthetic training anomalies (defect SYNTHETIC) get their own colour and marker.
SYNTHETIC_COLOUR, SYNTHETIC_MARKER = "#ff7f0e", "d"  # "d": no defect uses it


def save_figure(figure: Figure, path: str | Path) -> None:
    """PNG without a timestamp or version stamp, so the same figure gives the same bytes."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)


def tsne_figure(
    points: np.ndarray,
    labels: np.ndarray,
    defects: Sequence[str],
    title: str,
    is_train: np.ndarray | None = None,
) -> Figure:
    """Colour = good/anomalous, marker = defect type; in a joint map, hollow = test image.
    Points of the defect "synthetic" (the synthetic training anomalies) are orange thin diamonds."""
    figure, axes = plt.subplots(figsize=(6.4, 5.2))
    defects = np.asarray(defects)
    for index, defect in enumerate(sorted(set(defects), key=lambda d: (d != "good", d))):
        for train_flag in (True, False) if is_train is not None else (None,):
            chosen = defects == defect
            if train_flag is not None:
                chosen &= is_train == train_flag
            if not chosen.any():
                continue
            colour = CLASS_COLOURS[int(labels[chosen][0])]
            marker = MARKERS[index % len(MARKERS)]
            if defect == SYNTHETIC:
                colour, marker = SYNTHETIC_COLOUR, SYNTHETIC_MARKER
            hollow = train_flag is False
            suffix = "" if train_flag is None else (" (train)" if train_flag else " (test)")
            axes.scatter(
                points[chosen, 0],
                points[chosen, 1],
                marker=marker,
                facecolors="none" if hollow else colour,
                edgecolors=colour,
                s=70 if hollow else 30,  # a test ring stays visible around a train dot
                linewidths=1.5 if hollow else 0.8,
                label=defect + suffix,
            )
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    return figure


def heat_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image (H, W, 3 uint8) blended with the heatmap ([0, 1]) in the jet colour map."""
    colours = matplotlib.colormaps["jet"](np.clip(heatmap, 0.0, 1.0))[..., :3] * 255.0
    return np.round((1 - alpha) * image + alpha * colours).astype(np.uint8)


def outlined(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """A copy of `image` with the border of `mask` drawn in white."""
    image = image.copy()
    if mask is not None and mask.any():
        image[mask & ~binary_erosion(mask)] = 255
    return image


def side_by_side(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Images (H, W, 3) in a row with white gaps, small ones enlarged (nearest neighbour) to
    about 192 px high so they stay legible."""
    height = parts[0].shape[0]
    scale = max(1, 192 // height)
    gap = np.full((height, 4, 3), 255, dtype=np.uint8)
    row = [part if n == 0 else np.concatenate([gap, part], axis=1) for n, part in enumerate(parts)]
    panel = np.concatenate(row, axis=1)
    return panel.repeat(scale, axis=0).repeat(scale, axis=1)


def gradcam_panel(image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Original | overlay side by side (the article's figure), the mask outlined in white."""
    return side_by_side([image, outlined(heat_overlay(image, heatmap), mask)])


NO_SYNTHETIC = "no synthetic anomalies (train.synthetic_anomalies: none)"


def gallery_figure(
    panels: Sequence[np.ndarray],
    captions: Sequence[str],
    title: str,
    columns: int = 3,
    empty_text: str = "no images of this kind",
) -> Figure:
    """A grid of panels with captions; an empty gallery says so instead of being blank."""
    rows = max(1, -(-len(panels) // columns))
    figure, axes_grid = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 1.9 * rows + 0.5), squeeze=False
    )
    for axes in axes_grid.flat:
        axes.axis("off")
    for axes, panel, caption in zip(axes_grid.flat, panels, captions, strict=False):
        axes.imshow(panel)
        # y given: matplotlib skips lifting the title over the axis' tick labels (the axes
        # are off: it stays at 1.0), a search that took most of a gallery's drawing time.
        axes.set_title(caption, fontsize=7, y=1.0)
    if not panels:
        axes_grid[0, 0].text(0, 0.5, empty_text, fontsize=10)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def synthetic_figure(
    sources: np.ndarray,
    anomalies: np.ndarray,
    masks: np.ndarray,
    kinds: Sequence[str],
    title: str,
    columns: int = 2,
) -> Figure:
    """Good image | the synthetic anomaly made from it | the same with its mask outlined."""
    panels = [
        side_by_side([source, anomaly, outlined(anomaly, mask)])
        for source, anomaly, mask in zip(sources, anomalies, masks, strict=True)
    ]
    captions = [f"good | {kind} | {kind}, pasted area outlined" for kind in kinds]
    return gallery_figure(panels, captions, title, columns=columns, empty_text=NO_SYNTHETIC)


GALLERY_SIZE = 12  # panels per kind gallery; the counts in metrics/ cover every image


def write_gradcam_figures(
    folder: Path,
    rows: pd.DataFrame,
    images: np.ndarray,
    heatmaps: np.ndarray,
    masks: np.ndarray,
    kinds: Sequence[str],
    kind_names: Sequence[str],
    describe: str,
    synthetic_kind: str,
) -> None:
    """The article's figure per real image (images/), one gallery per kind (`kind_names`) of
    the test defect images (kinds/<kind>.png) and one of the synthetic training anomalies
    (synthetic.png). `describe` names the maps in the gallery titles (method, layer, target,
    epochs)."""
    panels = [gradcam_panel(images[i], heatmaps[i], masks[i]) for i in range(len(rows))]
    split, defects = rows["split"].to_numpy(), rows["defect"].to_numpy()
    stems = [Path(path).stem for path in rows["path"]]
    for i in np.flatnonzero(split != SYNTHETIC):
        save_png(panels[i], folder / "images" / f"{split[i]}_{defects[i]}_{stems[i]}.png")
    chosen = np.flatnonzero(split == SYNTHETIC)[:GALLERY_SIZE]
    figure = gallery_figure(
        [panels[i] for i in chosen],
        [f"synthetic {stems[i]}: {kinds[i].replace('_', ' ')}" for i in chosen],
        f"synthetic training anomalies ({synthetic_kind}; white: pasted area)",
        empty_text=NO_SYNTHETIC,
    )
    save_figure(figure, folder / "synthetic.png")
    for kind in kind_names:
        chosen = [i for i in range(len(rows)) if split[i] == "test" and kinds[i] == kind]
        title = f"{kind.replace('_', ' ')}: {len(chosen)} test defect images ({describe})"
        captions = [f"{defects[i]} {stems[i]}" for i in chosen[:GALLERY_SIZE]]
        figure = gallery_figure([panels[i] for i in chosen[:GALLERY_SIZE]], captions, title)
        save_figure(figure, folder / "kinds" / f"{kind}.png")


def targets_figure(
    images: np.ndarray,
    masks: np.ndarray,
    defects: Sequence[str],
    maps: dict[tuple[str, str], np.ndarray],
    layer: str,
) -> Figure:
    """One row per (method, target) of `maps`, one column per image (one per defect type)."""
    panels, captions = [], []
    for (method, target), heatmaps in maps.items():
        for image, mask, heatmap, defect in zip(images, masks, heatmaps, defects, strict=True):
            panels.append(gradcam_panel(image, heatmap, mask))
            captions.append(f"{defect}: {method}, target {target}")
    return gallery_figure(
        panels,
        captions,
        f"{layer}: the class explained decides where the heat goes",
        columns=max(1, len(images)),
    )
