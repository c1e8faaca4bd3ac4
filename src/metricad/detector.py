"""The trained model applied to new images: every score, the normalised score, a verdict and
a heat map per image, from models/model.pt and models/scorer.npz alone.

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

from metricad.checkpoint import read_checkpoint
from metricad.gradcam import heatmaps_for_images
from metricad.images import resize_rgb
from metricad.inference import embed_and_score, softmax_score
from metricad.runtime import select_device
from metricad.scores import Scoring, load_scoring
from metricad.torch_model import AnomalyNet

MODEL_FILE, SCORER_FILE = "model.pt", "scorer.npz"


@dataclass
class Predictions:
    """`table`: one row per image: every score, `normalized` (the verdict score on anomalib's
    0..1 scale, 0.5 at its threshold) and `anomalous`; `heatmaps`: (N, size, size) in [0, 1]
    (None when not asked for); `images`: the resized images the maps belong to."""

    table: pd.DataFrame
    heatmaps: np.ndarray | None
    images: np.ndarray


class Detector:
    """The trained network and its scoring, in eval mode."""

    def __init__(
        self,
        model: AnomalyNet,
        scoring: Scoring,
        cam: tuple[str, str, str],
        device: torch.device,
        batch_size: int = 64,
    ) -> None:
        self.model = model.eval()
        self.scoring = scoring
        self.cam = cam
        self.device = device
        self.batch_size = batch_size
        self.size = model.encoder.input_size

    @classmethod
    def load(
        cls, folder: str | Path = "models", device: str = "auto", batch_size: int | None = None
    ) -> Detector:
        """The detector of a trained pipeline's models/ folder (model.pt and scorer.npz).

        `batch_size` defaults to the pipeline's own (train.inference_batch_size): every batch
        is padded to it, and with the same batch size predict gives the pipeline's bits."""
        folder = Path(folder)
        model, trained_with = read_checkpoint(folder / MODEL_FILE)
        scoring, record = load_scoring(folder / SCORER_FILE)
        if batch_size is None:
            batch_size = trained_with["train"]["inference_batch_size"]
        return cls(model, scoring, tuple(record["cam"]), select_device(device), batch_size)

    def predict(self, images: list[np.ndarray], heatmaps: bool = True) -> Predictions:
        """Score uint8 HxWx3 images of any size (each resized to the training size first)."""
        resized = np.stack([resize_rgb(image, self.size) for image in images])
        tensor = torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()
        embeddings, probabilities = embed_and_score(
            self.model, tensor, self.batch_size, self.device, progress=False
        )
        prob_anomalous = softmax_score(probabilities)
        table = pd.DataFrame(self.scoring.scores(embeddings, prob_anomalous))
        point = self.scoring.points[self.scoring.verdict]
        table["normalized"] = point.normalized(table[self.scoring.verdict].to_numpy())
        table["anomalous"] = point.anomalous(table[self.scoring.verdict].to_numpy())
        maps = None
        if heatmaps:
            method, layer, target = self.cam
            maps = heatmaps_for_images(
                self.model, tensor, self.device, self.batch_size, target, layer, method, False
            )[0].numpy()
        return Predictions(table, maps, resized)
