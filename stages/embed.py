"""Stage `embed`: the 512-d embedding and class probabilities of every image, in eval mode."""

import numpy as np

from metricad.checkpoint import arch_from_params, load_checkpoint
from metricad.data import load_image_tensor
from metricad.errors import run_stage
from metricad.files import atomic_path
from metricad.inference import embed_and_score
from metricad.layout import read_manifest
from metricad.params import load_params
from metricad.paths import EMBEDDINGS, MODEL, PREDICTIONS, RESIZED_MANIFEST
from metricad.runtime import make_deterministic, select_device


def main() -> None:
    params = load_params()
    make_deterministic(params.train.seed)
    device = select_device(params.train.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    model = load_checkpoint(MODEL, expected_arch=arch_from_params(params))
    embeddings, probabilities = embed_and_score(
        model, load_image_tensor(manifest), params.train.batch_size, device
    )
    predictions = manifest[["path", "label", "defect", "split"]].copy()
    predictions["prob_anomalous"] = probabilities[:, 1].round(6)
    with atomic_path(EMBEDDINGS) as tmp, open(tmp, "wb") as handle:
        np.save(handle, embeddings.astype(np.float32))
    with atomic_path(PREDICTIONS) as tmp:
        predictions.to_csv(tmp, index=False)


if __name__ == "__main__":
    run_stage(main)
