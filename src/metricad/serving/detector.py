"""The trained model applied to new images: every score, the normalised score, a verdict and
a heat map per image, from models/ alone (model.pt, scorer.npz, inference.json).

    detector = Detector.load("models")
    result = detector.predict([load_rgb("photo.png")])   # any size; resized as in training
    result.table                                          # one row per image
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from metricad.analysis.gradcam import heatmaps_for_images
from metricad.data.framing import framer
from metricad.data.images import resize_rgb
from metricad.errors import MetricadError
from metricad.files import read_json
from metricad.model.checkpoint import read_checkpoint
from metricad.model.inference import embed_and_score, network_maps, softmax_score
from metricad.model.torch_model import AnomalyNet
from metricad.model.views import VIEWS
from metricad.params import ResizeParams
from metricad.runtime import select_device
from metricad.scoring.head import ScoringHead
from metricad.scoring.scorer_file import read_scoring
from metricad.validation import section

MODEL_FILE, SCORER_FILE, SETTINGS_FILE = "model.pt", "scorer.npz", "inference.json"


@dataclass
class Predictions:
    """`table`: one row per image: every score, `normalized` (the verdict score on anomalib's
    0..1 scale, 0.5 at its threshold) and `anomalous`; `heatmaps`: (N, size, size) in [0, 1],
    the network's own map when it has one (Detector.own_map), else the configured CAM (None
    when not asked for); `images`: the resized images the maps belong to."""

    table: pd.DataFrame
    heatmaps: np.ndarray | None
    images: np.ndarray


class Detector:
    """The trained network and its scoring head, in eval mode."""

    def __init__(
        self,
        model: AnomalyNet,
        head: ScoringHead,
        cam: tuple[str, str, str],
        device: torch.device,
        batch_size: int = 64,
        views: str = "single",
        resize: ResizeParams | None = None,
    ) -> None:
        self.model = model.eval()
        self.head = head.eval()
        self.cam = cam
        self.device = device
        self.batch_size = batch_size
        self.views = views
        # The resize section the network was trained with: its framing frames a photo.
        self._framer = framer(resize if resize is not None else section(ResizeParams))
        self.size = model.encoder.input_size

    @classmethod
    def load(
        cls, folder: str | Path = "models", device: str = "auto", batch_size: int | None = None
    ) -> Detector:
        """The detector of a trained pipeline's models/ folder (model.pt; scorer.npz with the
        embedding's views and batch size; the gradcam stage's inference.json, its CAM).

        `batch_size` defaults to the pipeline's own (runtime.inference_batch_size): every batch
        is padded to it, and with the same batch size predict gives the pipeline's bits."""
        folder = Path(folder)
        model, trained = read_checkpoint(folder / MODEL_FILE)
        head, embedding = read_scoring(folder / SCORER_FILE)
        settings_file = folder / SETTINGS_FILE
        if not settings_file.is_file():
            raise MetricadError(
                f"{settings_file}: inference settings not found (run `dvc repro gradcam`)"
            )
        settings = read_json(settings_file)
        cam = settings["cam"]
        return cls(
            model,
            head,
            (cam["method"], cam["layer"], cam["target"]),
            select_device(device),
            embedding["batch_size"] if batch_size is None else batch_size,
            embedding["views"],
            resize_of(trained),
        )

    def own_map(self) -> str | None:
        """The network's own heat map predict draws (None: the configured CAM): the verdict
        score's when the network computes that score (`segmentation` for `map`, `patch` for
        `patch`), else the first the network has."""
        names = self.model.heat_map_names()
        # own_score_names and heat_map_names list the network's parts in one order.
        of_score = dict(zip(self.model.own_score_names(), names, strict=True))
        return of_score.get(self.head.verdict, names[0] if names else None)

    def frame(self, photo: np.ndarray, where: str) -> np.ndarray:
        """A uint8 HxWx3 photo framed as the training photos were (resize.framing); a photo it
        cannot frame is a one-line error starting with `where`."""
        return self._framer(photo, None, where)[0]

    def predict(
        self, images: list[np.ndarray], heatmaps: bool = True, already_framed: bool = False
    ) -> Predictions:
        """Score uint8 HxWx3 photos of any size, each framed (`frame`; `already_framed`: they are
        already) and resized to the training size first."""
        if not already_framed:
            images = [self.frame(image, f"image {i}") for i, image in enumerate(images)]
        resized = np.stack([resize_rgb(image, self.size) for image in images])
        tensor = torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()
        maps, own_map = None, self.own_map()
        if heatmaps and own_map is not None:  # the network's own map localises: the heat map
            maps = network_maps(self.model, tensor, self.batch_size, self.device)[own_map]
        elif heatmaps:
            method, layer, target = self.cam
            explained = heatmaps_for_images(
                self.model, tensor, self.device, self.batch_size, target, layer, method, False
            )
            maps = explained[0].numpy()
        if heatmaps and own_map is None and VIEWS[self.views].identity:  # the CAM's pass embeds
            embeddings, probabilities = explained[3][:, None].numpy(), explained[4].numpy()
            own = {}
        else:
            embeddings, probabilities, own = embed_and_score(
                self.model, tensor, self.batch_size, self.device, progress=False, views=self.views
            )
        prob_anomalous = torch.from_numpy(softmax_score(probabilities))
        values, normalized, anomalous = self.head(
            torch.from_numpy(embeddings),
            prob_anomalous,
            {name: torch.from_numpy(scores) for name, scores in own.items()},
        )
        table = pd.DataFrame(values.numpy(), columns=list(self.head.names))
        table["normalized"] = normalized.numpy()
        table["anomalous"] = anomalous.numpy()
        return Predictions(table, maps, resized)


def resize_of(trained: dict) -> ResizeParams:
    """The resize section a checkpoint's params record holds, checked as params are (a network
    trained before resize.framing existed: the defaults, `whole`)."""
    return section(ResizeParams, **(trained.get("resize") or {}))
