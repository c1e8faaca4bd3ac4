"""Stage `embed`: the 512-d embedding and class probabilities of every image, in eval mode,
and of the fixed sample of synthetic anomalies (drawn beside the real ones in the t-SNE maps).
With `embed.views: dihedral`, an embedding per view (N, 8, 512) and the views' mean probability.
The network's own image scores add a column each: `map_score` with a segmentation head
(model.segmentation), `patch_score` with a patch memory (model.patch_memory).
The views and the padded batch size go to data/embeddings/settings.json, for predict (via score)."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import numpy as np
import pandas as pd
import torch

from metricad.data.batches import load_image_tensor
from metricad.data.framing import recorded_framing
from metricad.data.manifest import read_manifest
from metricad.errors import run_stage
from metricad.files import fresh_folder, write_csv, write_json, write_npy
from metricad.model.checkpoint import load_checkpoint
from metricad.model.inference import embed_and_score, softmax_score
from metricad.model.torch_model import arch_from_params
from metricad.params import load_params
from metricad.paths import (
    EMBEDDING_SETTINGS,
    EMBEDDINGS,
    EMBEDDINGS_DIR,
    MODEL,
    PREDICTIONS,
    RESIZED_MANIFEST,
    SYNTHETIC_EMBEDDINGS,
    SYNTHETIC_IMAGES,
    SYNTHETIC_INDEX,
    SYNTHETIC_PREDICTIONS,
)
from metricad.runtime import make_deterministic, select_device


def main() -> None:
    params = load_params()
    make_deterministic(params.train.seed)
    device = select_device(params.runtime.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    model = load_checkpoint(MODEL, expected_arch=arch_from_params(params, recorded_framing()))

    batch_size, amp, views = (
        params.runtime.inference_batch_size,
        params.runtime.amp,
        params.embed.views,
    )

    def embed(images: torch.Tensor, table: pd.DataFrame, vectors_path, table_path) -> None:
        embeddings, probabilities, own = embed_and_score(
            model, images, batch_size, device, amp=amp, views=views
        )
        table["prob_anomalous"] = softmax_score(probabilities)
        for name, scores in own.items():
            table[f"{name}_score"] = scores
        write_npy(vectors_path, embeddings.astype(np.float32))
        write_csv(table_path, table)

    fresh_folder(EMBEDDINGS_DIR)
    embed(
        load_image_tensor(manifest),
        manifest[["path", "label", "defect", "split"]].copy(),
        EMBEDDINGS,
        PREDICTIONS,
    )
    embed(
        torch.from_numpy(np.load(SYNTHETIC_IMAGES)),
        pd.read_csv(SYNTHETIC_INDEX, keep_default_na=False),
        SYNTHETIC_EMBEDDINGS,
        SYNTHETIC_PREDICTIONS,
    )
    write_json(EMBEDDING_SETTINGS, {"views": views, "batch_size": batch_size})


if __name__ == "__main__":
    run_stage(main)
