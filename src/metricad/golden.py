"""The golden computation: a fixed chain of small computations of the pipeline, from single
kernels at the demo's shapes to a few training steps of the real network, its embeddings, a
Grad-CAM++ map and the scores, each reduced to an md5 of its bytes.

    python -m metricad.golden        # one line per step: md5, then the step's name

tests/test_golden.py holds the md5s this chain gives under the pinned numerics
(metricad/numerics.py) and names the first step that differs on another machine; the
steps run from the simplest kernel to the whole pipeline, so the first difference says where
a machine leaves the promise. The inputs come from torch's own generator (the same bits on
every CPU); nothing is read from disk.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import argparse
import hashlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from metricad.analysis.gradcam import heatmaps_for_images
from metricad.analysis.pixel_metrics import aupro, pixel_auroc
from metricad.analysis.tsne import per_image, tsne_map
from metricad.data.anomalies import corrupt_batch
from metricad.model.heads.adacos import AdaCos, AdaCosSettings
from metricad.model.inference import embed_and_score
from metricad.model.recipe import make_optimizer
from metricad.model.torch_model import ChannelDropout, build_model
from metricad.model.training import train
from metricad.params import params_from_dict
from metricad.runtime import make_deterministic
from metricad.scoring.head import fitted_head

SIZE, BATCH = 96, 16  # the demo's image size and batch: the kernels' shapes
# The scores of a network without a segmentation head (`map` needs one).
EMBEDDING_SCORES = ("softmax", "knn", "gaussian")
# The chain trains smaller (it must run under CPU emulation too): 12 images at 64 px.
CHAIN_SIZE, CHAIN_IMAGES = 64, 12
# name: (in channels, out channels, input side, kernel, stride), ResNet18's convolutions at 96 px
CONVOLUTIONS = {
    "conv1": (3, 64, 96, 7, 2),
    "layer1": (64, 64, 24, 3, 1),
    "layer2 stride 2": (64, 128, 24, 3, 2),
    "layer2 downsample": (64, 128, 24, 1, 2),
    "layer3": (256, 256, 6, 3, 1),
    "layer4": (512, 512, 3, 3, 1),
}


def md5(*values: torch.Tensor | np.ndarray) -> str:
    digest = hashlib.md5()
    for value in values:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().contiguous().numpy()
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _weights(model: torch.nn.Module) -> str:
    state = model.state_dict()
    return md5(*(state[key] for key in sorted(state)))


def _kernels(generator: torch.Generator) -> Iterator[tuple[str, str]]:
    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    for name, (cin, cout, side, kernel, stride) in CONVOLUTIONS.items():
        x = randn(BATCH, cin, side, side).requires_grad_()
        w = (randn(cout, cin, kernel, kernel) * 0.05).requires_grad_()
        y = F.conv2d(x, w, stride=stride, padding=kernel // 2)
        grad_x, grad_w = torch.autograd.grad(y, (x, w), randn(*y.shape))
        yield f"convolution {name}: forward", md5(y)
        yield f"convolution {name}: backward to the input", md5(grad_x)
        yield f"convolution {name}: backward to the weights", md5(grad_w)
    x = randn(BATCH, 64, 48, 48).requires_grad_()
    gamma, beta = torch.ones(64, requires_grad=True), torch.zeros(64, requires_grad=True)
    y = F.batch_norm(x, torch.zeros(64), torch.ones(64), gamma, beta, training=True)
    yield "batch norm: forward", md5(y)
    yield "batch norm: backward", md5(*torch.autograd.grad(y, (x, gamma, beta), randn(*y.shape)))
    y = F.max_pool2d(x, 3, 2, 1)
    yield "max pool: forward and backward", md5(y, *torch.autograd.grad(y, x, randn(*y.shape)))
    x = randn(BATCH, 512 * 3 * 3).requires_grad_()
    w, b = (randn(512, 512 * 3 * 3) * 0.01).requires_grad_(), randn(512).requires_grad_()
    y = F.linear(x, w, b)
    yield "linear: forward", md5(y)
    yield "linear: backward", md5(*torch.autograd.grad(y, (x, w, b), randn(*y.shape)))
    dropout = ChannelDropout(0.5).train()
    yield "channel dropout", md5(dropout(randn(BATCH, 512, 3, 3)))
    head = AdaCos(512, 2, AdaCosSettings()).train()
    embeddings, labels = randn(BATCH, 512).requires_grad_(), torch.arange(BATCH) % 2
    logits = head(embeddings, labels)
    loss = F.cross_entropy(logits, labels)
    yield "AdaCos head and its scale update", md5(logits, head.scale)
    yield "cross entropy: forward and backward", md5(loss, *torch.autograd.grad(loss, embeddings))


def run() -> Iterator[tuple[str, str]]:
    """(step, md5) pairs, in order, computed lazily: a step that fails is the one named."""
    make_deterministic(0)
    generator = torch.Generator().manual_seed(0)
    yield from _kernels(generator)
    params = params_from_dict(
        {
            "resize": {"size": CHAIN_SIZE},
            "train": {"batch_size": 6, "synthetic_anomalies": "mixed", "monitor_every": 1},
        }
    )
    shape = (CHAIN_IMAGES, 3, CHAIN_SIZE, CHAIN_SIZE)
    images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    labels = (torch.arange(CHAIN_IMAGES) % 4 == 3).long()
    yield "images (torch's generator)", md5(images)
    corrupted, corrupted_labels, _ = corrupt_batch(images, labels, "mixed", 0.5, 0.3, generator)
    yield "synthetic anomalies", md5(corrupted, corrupted_labels)

    model = build_model(CHAIN_SIZE)
    yield "initial weights", _weights(model)
    optimizer = make_optimizer(model, params.train)
    for parameter in model.parameters():
        parameter.grad = torch.randn(parameter.shape, generator=generator) * 1e-3
    optimizer.step()
    yield "one Adam step", _weights(model)
    per_epoch: list[str] = []
    history = train(
        model,
        images,
        labels,
        params.train,
        2,
        torch.device("cpu"),
        monitor=(images, labels),
        progress=False,
        on_epoch=lambda _row: per_epoch.append(_weights(model)),
    )
    for epoch, digest in enumerate(per_epoch, start=1):
        yield f"weights after training epoch {epoch}", digest
    yield "training history", md5(np.array([list(row.values()) for row in history]))

    embeddings, probabilities, _ = embed_and_score(model, images, 64, torch.device("cpu"), False)
    yield "embeddings (eval mode)", md5(embeddings)
    yield "class probabilities", md5(probabilities)
    alone, _, _ = embed_and_score(model, images[5:6], 64, torch.device("cpu"), False)
    yield "embedding of one image alone (a padded batch)", md5(alone)
    maps, peaks, classes, *_ = heatmaps_for_images(
        model, images[:4], torch.device("cpu"), 64, "anomalous", "layer2", "gradcam++", False
    )
    yield "Grad-CAM++ maps at layer2", md5(maps, peaks, classes)
    masks = np.zeros((4, CHAIN_SIZE, CHAIN_SIZE), dtype=bool)
    masks[:, 20:34, 26:40] = True
    yield (
        "pixel AUROC and AUPRO",
        md5(np.array([pixel_auroc(maps.numpy(), masks), aupro(maps.numpy(), masks)])),
    )
    # Every image a training image: the head is fitted on the good ones (and, with no
    # validation split, its operating points too).
    split, prob_anomalous = np.full(len(images), "train"), probabilities[:, 1]
    head, _ = fitted_head(
        EMBEDDING_SCORES,
        EMBEDDING_SCORES[0],
        embeddings,
        prob_anomalous,
        {},
        split,
        labels.numpy(),
        params_from_dict({"score": {"knn": {"k": 3}}}).score,
    )
    values = head.score_values(torch.from_numpy(embeddings), torch.from_numpy(prob_anomalous))
    for column, name in enumerate(EMBEDDING_SCORES):
        yield f"{name} score", md5(values[:, column])
    yield "t-SNE map", md5(tsne_map(per_image(embeddings), perplexity=5.0, seed=0, max_iter=250))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m metricad.golden",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    for step, digest in run():
        print(f"{digest}  {step}", flush=True)


if __name__ == "__main__":
    main()
