"""params.yaml as typed dataclasses, validated on read.

The dataclasses below are the schema: every key, its type, its default and its allowed
range. Reading params.yaml checks it against them, so an unknown key (a typo given with
`dvc exp run -S`), a wrong type or an impossible value stops with one line naming the key.
A registry entry's own settings live in its file; the section hosting the registry
(`ENTRIES`) gets them as a subsection under the entry's name (`score.knn.k`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from metricad.errors import MetricadError
from metricad.validation import build, folder_name, hosted_registry, quoted_path, ranged, section

# The choices other modules offer, named once here (gradcam.METHODS, the registries, ...
# are typing.get_args of these).
CamMethod = Literal["gradcam", "gradcam++", "hirescam"]
CamTarget = Literal["anomalous", "good", "predicted"]
SyntheticKind = Literal["none", "cutpaste", "scar", "noise", "perlin", "mixed"]
ScoreName = Literal["softmax", "knn", "gaussian", "map", "patch"]
SourceName = Literal["synthetic", "mvtec", "folder", "csv"]
Views = Literal["single", "dihedral"]
# model.patch_views: a view set, or auto (dihedral where training flips and turns its images).
PatchViews = Literal[Views, "auto"]
Framing = Literal["whole", "object_axis", "object_band", "auto"]

SEED_MAX = 2**32 - 1  # numpy's legacy RandomState (scikit-learn's t-SNE) takes no larger seed


def _hosting(cls: type) -> Any:
    """A section field whose default has its registry's subsections too."""
    return field(default_factory=lambda: section(cls))


@dataclass(frozen=True)
class DataParams:
    """data: which images (the generated demo, an MVTec AD copy, a folder or a CSV list of
    the user's photos); each source's own settings: data.<source> (data/sources/)."""

    ENTRIES = "metricad.data.sources:SOURCES"

    source: SourceName = "synthetic"
    root: str | None = None
    category: str = folder_name("leather")


@dataclass(frozen=True)
class SplitParams:
    """split: which images train, which are held out, which test."""

    anomalous_train_fraction: float = ranged(0.0, 1.0, default=0.5)
    # Share of train/good held out of training: the good images thresholds are chosen on.
    validation_fraction: float = ranged(0.0, 0.9, default=0.2)
    # Share of the good images held out for test where the source gives no split (folder, csv).
    test_fraction: float = ranged(0.0, 0.9, default=0.2)
    seed: int = ranged(0, SEED_MAX, default=0)


@dataclass(frozen=True)
class ResizeParams:
    """resize: how each photo is framed (its own settings: resize.<framing>) and the side every
    image and mask is resized to."""

    ENTRIES = "metricad.data.framing:FRAMINGS"

    framing: Framing = "whole"
    size: int = ranged(32, 2048, default=64)


@dataclass(frozen=True)
class ModelParams:
    """model: the backbone's start and the metric head (its own settings: model.<head>)."""

    ENTRIES = "metricad.model.heads:HEADS"

    weights: str = "none"
    embedding_dim: int = ranged(2, 8192, default=512)
    head: Literal["adacos", "arcface"] = "adacos"
    # flatten: the article's neck, a Linear over the whole layer4 map (built for one image
    # size); avgpool: the layer4 map averaged over its positions first; auto: avgpool where
    # training takes random squares (train.crop), else flatten.
    neck: Literal["flatten", "avgpool", "auto"] = "flatten"
    dropout: float = ranged(0.0, 0.99, default=0.5)
    # A segmentation head over layer1..layer3, trained on the synthetic anomalies' masks:
    # a per-pixel anomaly map (the `segmentation` heat map) and its image score (`map`).
    segmentation: bool = False
    # Each image standardised over its own pixels before the backbone (per channel): lighting
    # drift on a line (brightness, contrast) is not an anomaly.
    standardize: bool = False
    # Keep the good training images' layer1+layer2 patch vectors after training (the bank, in
    # the checkpoint): an image score (`patch`) and a heat map (`patch`) from the distance to
    # the nearest at each position (model/patch_memory.py; for photos framed to one pose).
    patch_memory: bool = False
    # The views of each image the memory keeps a bank of (model/views/), their maps averaged:
    # single | dihedral | auto (dihedral where training flips and turns its images).
    patch_views: PatchViews = "single"


@dataclass(frozen=True)
class TrainParams:
    """train: the recipe and the synthetic anomalies (how a run uses the machine: runtime)."""

    batch_size: int = ranged(1, 4096, default=16)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = ranged(1e-8, 10.0, default=1e-3)
    weight_decay: float = ranged(0.0, 1.0, default=5e-4)
    momentum: float = ranged(0.0, 1.0, default=0.9)
    # The recipe (docs/results.md: what each does to the spread over seeds). The article's:
    # lr_schedule constant, warmup_epochs 0, ema_decay 0.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: int = ranged(0, 100000, default=10)
    ema_decay: float = ranged(0.0, 0.9999, default=0.99)
    # Flips and quarter turns of training images; auto: unless the framing turns every photo
    # to one pose (resize.framing object_axis, object_band), which they would undo.
    augment: Literal[True, False, "auto"] = True
    max_shift: int = ranged(0, 1024, default=0)  # random shift (reflected border); 0: none
    # Train on a random square of this side (px) of each resized image, every stage after on
    # the whole image: the network learns at resize.size's scale for the compute of this
    # side. 0: whole images. Needs model.neck avgpool or auto (the flatten neck has one input
    # side). After a framing to one pose, where a square would move each part of the object,
    # every photo is resized to this side instead and trained whole.
    crop: int = ranged(0, 4096, default=0)
    # Good images turned into synthetic anomalies in each batch (data/anomalies/): the way to
    # train on good images only (split.anomalous_train_fraction: 0).
    synthetic_anomalies: SyntheticKind = "cutpaste"
    synthetic_share: float = ranged(0.0, 1.0, default=0.5)
    # Colour jitter of the pasted piece: CutPaste's 0.1 taught nothing on the demo.
    synthetic_jitter: float = ranged(0.0, 1.0, default=0.3)
    # Brightness, contrast and gamma of whole training images changed by up to this share
    # (batches.photometric): lighting drift is not a defect. 0: none (nothing is drawn).
    photometric: float = ranged(0.0, 0.9, default=0.0)
    # Weight of the segmentation head's focal loss beside the metric head's cross-entropy
    # (model.segmentation only): the focal loss is small (mostly easy background pixels).
    segmentation_weight: float = ranged(0.0, 1000.0, default=1.0)
    seed: int = ranged(0, SEED_MAX, default=0)
    compile: bool = False  # torch.compile of the training step: it does not pay on the CPU
    # Epochs between passes over the test split (logged, never used for choices); the last
    # epoch is always monitored.
    monitor_every: int = ranged(1, 100000, default=20)


@dataclass(frozen=True)
class RuntimeParams:
    """runtime: how a run uses the machine. Outside the training fingerprint: changing one of
    these never makes a trained model stale (on the CPU, threads and cpu_kernels still decide
    the last bits of the numbers: docs/reproducibility.md)."""

    # CPU threads of every numeric library, in every stage (numerics.py).
    threads: int = ranged(1, 1024, default=2)
    cpu_kernels: Literal["avx2", "native"] = "avx2"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    # Batch of the eval-mode passes (test monitor, embed, gradcam, predict): sized for the
    # device, not a training hyperparameter.
    inference_batch_size: int = ranged(1, 4096, default=64)
    checkpoint_every: int = ranged(0, 100000, default=50)


@dataclass(frozen=True)
class SynthesizeParams:
    """synthesize: the fixed sample of synthetic anomalies embedded beside the real images."""

    samples: int = ranged(0, 10000, default=20)  # embedded, and drawn in the t-SNE maps
    seed: int = ranged(0, SEED_MAX, default=0)


@dataclass(frozen=True)
class EmbedParams:
    """embed: how an image becomes its embedding, for every stage after training and predict."""

    # single: the image as it is (the article's). dihedral: its 8 flips and quarter turns, the
    # views training augments with; scored by the mean of its views' scores (model/views/).
    views: Views = "single"


@dataclass(frozen=True)
class TsneParams:
    """tsne: the maps of the embeddings."""

    perplexity: float = ranged(1.0, 100.0, default=10.0)  # lowered on maps of fewer images
    max_iter: int = ranged(250, 100000, default=1000)
    seed: int = ranged(0, SEED_MAX, default=0)


@dataclass(frozen=True)
class GradcamParams:
    """gradcam: which map, of which class, and how it is scored against the masks."""

    method: CamMethod = "gradcam++"
    layer: Literal["layer1", "layer2", "layer3", "layer4"] = "layer2"
    target: CamTarget = "anomalous"
    train_images: int = ranged(0, 100000, default=8)
    tolerance_px: int = ranged(0, 1024, default=4)
    min_peak: float = ranged(0.0, None, default=1e-6)
    flat_fraction: float = ranged(0.01, 1.0, default=0.9)
    fpr_limit: float = ranged(0.01, 1.0, default=0.3)


@dataclass(frozen=True)
class ScoreParams:
    """score: the image anomaly scores and their operating points (a score's own settings:
    score.<score>)."""

    ENTRIES = "metricad.scoring:SCORES"

    # map: only for a network with a segmentation head (model.segmentation); patch: only
    # with a patch memory (model.patch_memory).
    scores: list[ScoreName] = field(default_factory=lambda: ["softmax", "knn", "gaussian"])
    # Each score's operating point, from the good validation images only: their
    # `threshold_quantile` quantile, or mean + `threshold_sd` standard deviations.
    threshold_method: Literal["quantile", "mean_sd"] = "quantile"
    threshold_quantile: float = ranged(0.5, 1.0, default=0.99)
    threshold_sd: float = ranged(0.0, 100.0, default=3.0)
    verdict_score: ScoreName = "gaussian"  # the score behind predict's verdict


@dataclass(frozen=True)
class EvaluateParams:
    """evaluate: the softmax classification's operating point."""

    threshold: float = ranged(0.0, 1.0, default=0.5)  # the article's softmax cut


@dataclass(frozen=True)
class Params:
    """params.yaml: every section."""

    epochs: int = ranged(1, 100000, default=150)
    data: DataParams = _hosting(DataParams)
    split: SplitParams = field(default_factory=SplitParams)
    resize: ResizeParams = _hosting(ResizeParams)
    model: ModelParams = _hosting(ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    runtime: RuntimeParams = field(default_factory=RuntimeParams)
    synthesize: SynthesizeParams = field(default_factory=SynthesizeParams)
    embed: EmbedParams = field(default_factory=EmbedParams)
    score: ScoreParams = _hosting(ScoreParams)
    tsne: TsneParams = field(default_factory=TsneParams)
    gradcam: GradcamParams = field(default_factory=GradcamParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)


# The sections whose registries are torch modules (the heads', the scores'): importing them
# loads torch (load_params' `without_torch`).
TORCH_HOSTS = (ModelParams, ScoreParams)

# Keys that moved, for a one-line hint to old params files: train.* before the runtime
# section, the score stage's before theirs, entry settings before their subsections.
MOVED = {
    **{f"train.{f.name}": f"runtime.{f.name}" for f in dataclasses.fields(RuntimeParams)},
    **{f"evaluate.{f.name}": f"score.{f.name}" for f in dataclasses.fields(ScoreParams)},
    "evaluate.knn_k": "score.knn.k",
    "model.adacos_min_scale": "model.adacos.min_scale",
    "model.arcface_scale": "model.arcface.scale",
    "model.arcface_margin": "model.arcface.margin",
    "data.good": "data.folder.good",
    "data.masks": "data.folder.masks",
}


def _check_relations(params: Params, without_torch: bool) -> None:
    """Checks that involve more than one key or the file system (without torch: those that
    need no registry of TORCH_HOSTS)."""
    # data.root is checked by the stage that reads it, against the source's needs
    # (data.sources.source_root).
    if params.train.max_shift >= params.resize.size:
        raise MetricadError(
            f"params: train.max_shift must be below resize.size ({params.resize.size}), "
            f"got {params.train.max_shift}"
        )
    crop = params.train.crop
    if crop and not (32 <= crop < params.resize.size and params.model.neck != "flatten"):
        raise MetricadError(
            f"params: train.crop must be 0 or from 32 to below resize.size "
            f"({params.resize.size}) and needs "
            f"model.neck avgpool or auto (the flatten neck has one input side), got crop {crop} "
            f"with neck {params.model.neck}"
        )
    score = params.score
    if score.verdict_score not in score.scores:
        raise MetricadError(
            f"params: score.verdict_score is {score.verdict_score!r}, which "
            f"score.scores does not list ({', '.join(score.scores)})"
        )
    if not without_torch:
        scores = hosted_registry(ScoreParams)
        for name in score.scores:
            part = scores.trait(name, "needs")  # the model.<part> its network computes it with
            if part is not None and not getattr(params.model, part):
                raise MetricadError(
                    f"params: score.scores lists {name!r}, which the network computes with "
                    f"model.{part}, but model.{part} is false"
                )
    weights = params.model.weights
    if weights not in ("none", "imagenet") and not Path(weights).is_file():
        raise MetricadError(
            f"params: model.weights must be 'none', 'imagenet' or a .pth file; "
            f"file {quoted_path(weights)} does not exist"
        )


def params_from_dict(values: Any, *, without_torch: bool = False) -> Params:
    """Validate a nested mapping (as read from params.yaml) into Params (`without_torch`:
    load_params')."""
    if not isinstance(values, dict):
        raise MetricadError("params: the file must hold a mapping of sections")
    deferred = frozenset(TORCH_HOSTS) if without_torch else frozenset()
    params = build(Params, values, moved=MOVED, deferred=deferred)
    _check_relations(params, without_torch)
    return params


def load_params(path: str | Path = "params.yaml", *, without_torch: bool = False) -> Params:
    """Read and validate params.yaml; every problem is a MetricadError naming the key.

    `without_torch`: for the stages that need neither torch nor the heads' and scores' own
    settings (prepare, resize, tsne: each starts 2-3 s sooner): the registries of TORCH_HOSTS
    are not imported, so their entries' subsections (model.<head>, score.<score>) are left
    unchecked, and unset in the Params returned, and so is whether each listed score's network
    part (a segmentation head, a patch memory) is on. Every stage that loads torch checks them;
    in the pipeline, train does, right after resize."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetricadError(f"{path}: file not found (run from the repository root)") from None
    # ValueError: an integer of more than 4300 digits; RecursionError: absurdly deep nesting.
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = str(error).replace("\n", " ")
        raise MetricadError(f"{path}: not valid YAML: {reason}") from None
    return params_from_dict(values if values is not None else {}, without_torch=without_torch)
