"""How much does one training run's result owe to its seed? Trains the demo (after
`dvc repro resize`) for several seeds under both protocols and prints each run's test image
AUROC (softmax, kNN, Gaussian), then mean ± sd and min per protocol, recipe and epoch count.

- article: good images + half of each defect type in training;
- good-only: MVTec's protocol, train/good only with CutPaste anomalies, the whole test set;
both with the committed split.seed and split.validation_fraction (held out, unused here).

A recipe is a set of train params (`--recipe name:key=value,key=value`); `article` and
`default` are built in. A recipe whose learning rate does not depend on the epoch count (both
built-in ones) is trained once to the largest epoch count and measured at each smaller one on
the way: the weights are those a shorter run would end with (tests/test_training.py).

    python scripts/seed_survey.py --seeds 0 1 2 3 4 --epochs 300 500 1000 \
        [--protocols article good-only] [--recipes article default] [--device cpu] \
        [--set model.neck=avgpool ...] [--show-monitor]

`--set KEY=VALUE` changes any param for every run (validated as params.yaml would be);
`--show-monitor` prints the test accuracy the monitor logged every `train.monitor_every`
epochs (logged only, as in the pipeline). The whole pipeline over seeds, with every metric
and resumable cells: scripts/survey.py.
"""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from survey_settings import SETTINGS  # shared by the scripts

from metricad.analysis.metrics import auroc_by_defect
from metricad.data.anomalies import makes_anomalies
from metricad.data.batches import labels_tensor, load_image_tensor
from metricad.data.manifest import read_manifest
from metricad.data.split import split_manifest
from metricad.errors import run_stage
from metricad.model.inference import embed_and_score, softmax_score
from metricad.model.recipe import schedule_depends_on_epochs
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.model.training import train
from metricad.model.training_run import TrainingState
from metricad.params import Params, load_params, params_from_dict
from metricad.paths import RESIZED_MANIFEST
from metricad.runtime import make_deterministic, select_device
from metricad.scoring.head import fitted_head
from metricad.validation import set_dotted

# The article's recipe is survey.py's "article-recipe" setting (its train.* keys).
RECIPES = {
    "article": {
        key.removeprefix("train."): value for key, value in SETTINGS["article-recipe"].items()
    },
    "default": {},
}
# split.anomalous_train_fraction; good only trains with CutPaste where a recipe has none.
PROTOCOLS = {"article": 0.5, "good-only": 0.0}


def parse_recipe(text: str) -> tuple[str, dict]:
    if text in RECIPES:
        return text, RECIPES[text]
    name, _, items = text.partition(":")
    changes = {}
    for item in filter(None, items.split(",")):
        key, value = item.split("=")
        changes[key] = type(getattr(load_params().train, key))(value)
    return name, changes


def params_with(changes: list[str]) -> Params:
    """params.yaml with each KEY=VALUE of `changes` set (VALUE read as YAML), validated."""
    if not changes:
        return load_params()
    values = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    for change in changes:
        key, _, value = change.partition("=")
        set_dotted(values, key, yaml.safe_load(value))
    return params_from_dict(values)


def test_aurocs(model, manifest, split, params, device) -> dict[str, float]:
    """Test image AUROC of every score, through the pipeline's scoring head (fitted on the
    good training images, its operating points on the validation images)."""
    embeddings, probabilities, _ = embed_and_score(
        model,
        load_image_tensor(manifest),
        params.runtime.inference_batch_size,
        device,
        progress=False,
    )
    labels, prob_anomalous = manifest["label"].to_numpy(), softmax_score(probabilities)
    settings = params.score  # the scores the pipeline computes (score.scores)
    head, _ = fitted_head(
        settings.scores,
        settings.verdict_score,
        embeddings,
        prob_anomalous,
        {},
        split,
        labels,
        settings,
    )
    is_test = split == "test"
    values = head.score_values(
        torch.from_numpy(embeddings[is_test]), torch.from_numpy(prob_anomalous[is_test])
    )
    defects = manifest["defect"].to_numpy()[is_test]
    return {
        name: auroc_by_defect(labels[is_test], values[:, column].numpy(), defects)["auroc"]
        for column, name in enumerate(settings.scores)
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", nargs="+", type=int, default=[300])
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--recipes", nargs="+", default=["article", "default"])
    parser.add_argument("--device", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--show-monitor", action="store_true")
    args = parser.parse_args()
    params = params_with(args.set)
    device = select_device(args.device or params.runtime.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    for name, changes in map(parse_recipe, args.recipes):
        for protocol in args.protocols:
            fraction = PROTOCOLS[protocol]
            split = split_manifest(
                manifest, fraction, params.split.seed, params.split.validation_fraction
            )["split"]
            train_rows, test_rows = manifest[split == "train"], manifest[split == "test"]
            images, labels = load_image_tensor(train_rows), labels_tensor(train_rows)
            monitor = (load_image_tensor(test_rows), labels_tensor(test_rows))
            train_params = dataclasses.replace(params.train, **changes)
            if fraction == 0 and not makes_anomalies(train_params.synthetic_anomalies):
                train_params = dataclasses.replace(train_params, synthetic_anomalies="cutpaste")
            # One run to the largest epoch count, measured at each on the way (the shorter
            # runs' weights, tests/test_training.py), unless the schedule depends on the total.
            shared = not schedule_depends_on_epochs(train_params)
            runs = [max(args.epochs)] if shared else sorted(args.epochs)
            for seed in args.seeds:
                seeded = dataclasses.replace(train_params, seed=seed)
                for epochs in runs:
                    make_deterministic(seed)
                    model = model_from_arch(arch_from_params(params))
                    snapshots: dict[int, dict] = {}

                    def keep(state: TrainingState, snapshots=snapshots) -> None:
                        if state.epoch in args.epochs:
                            snapshots[state.epoch] = state.final_weights()

                    start = time.perf_counter()
                    history = train(
                        model,
                        images,
                        labels,
                        seeded,
                        epochs,
                        device,
                        monitor=monitor if args.show_monitor else None,
                        progress=False,
                        save_state=keep,
                        save_every=math.gcd(*args.epochs),
                    )
                    seconds = time.perf_counter() - start
                    for measured in sorted(snapshots):
                        model.load_state_dict(snapshots[measured])
                        aurocs = test_aurocs(model, manifest, split.to_numpy(), params, device)
                        results.setdefault((protocol, name, measured), []).append(aurocs)
                        cells = " ".join(f"{k}={v:.3f}" for k, v in aurocs.items())
                        logged = " ".join(
                            f"{row['test_accuracy']:.2f}"
                            for row in history[:measured]
                            if "test_accuracy" in row
                        )
                        print(
                            f"{protocol:9s} {name:10s} seed {seed} {measured:5d} ep "
                            f"({seconds:5.0f} s) {cells}"
                            + (f" test accuracy logged: {logged}" if args.show_monitor else ""),
                            flush=True,
                        )
    names = params.score.scores
    print("\n| protocol | recipe | epochs | " + " | ".join(names) + " | best per seed (min) |")
    print("|---|---|---|" + "---|" * len(names) + "---|")
    for (protocol, name, epochs), rows in results.items():
        table = np.array([[row[s] for s in names] for row in rows], dtype=float)
        cells = [
            f"{m:.3f} ± {s:.3f}" for m, s in zip(table.mean(0), table.std(0, ddof=1), strict=True)
        ]
        print(
            f"| {protocol} | {name} | {epochs} | "
            + " | ".join(cells)
            + f" | {np.nanmax(table, axis=1).min():.3f} |"
        )


if __name__ == "__main__":
    run_stage(main)
