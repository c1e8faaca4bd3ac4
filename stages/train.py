"""Stage `train`: fine-tune ResNet18 + metric head on the training split (with
model.patch_memory, then keep the good training images' patch vectors); save one checkpoint."""

import metricad.numerics  # noqa: F401  (first: pins CPU kernels and threads; numerics.py)

# isort: split
from dvclive import Live
from metricad.data.batches import labels_tensor, load_image_tensor
from metricad.data.framing import recorded_framing
from metricad.data.manifest import read_manifest
from metricad.errors import run_stage
from metricad.files import write_json
from metricad.model.checkpoint import load_backbone_weights, save_checkpoint
from metricad.model.inference import fit_patch_memory
from metricad.model.resume import load_training_state, resume_fingerprint, save_training_state
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.model.training import LIVE_NAMES, settings_for_data, train, training_summary
from metricad.numerics import pinned
from metricad.params import load_params
from metricad.paths import (
    LIVE_DIR,
    MODEL,
    RESIZED_MANIFEST,
    TRAIN_STATE,
    TRAIN_SUMMARY,
)
from metricad.runtime import make_deterministic, select_device


def main() -> None:
    params = load_params()
    # The framing the resize stage gave the photos (resize.framing auto: the one it chose):
    # train.augment auto follows it, and the checkpoint records it for predict.
    framing = recorded_framing()
    make_deterministic(params.train.seed)
    device = select_device(params.runtime.device)
    manifest = read_manifest(RESIZED_MANIFEST)
    train_rows = manifest[manifest["split"] == "train"]
    test_rows = manifest[manifest["split"] == "test"]
    real_anomalies = int(train_rows["label"].sum())
    train_params, warnings = settings_for_data(params, len(train_rows), real_anomalies, framing)
    for warning in warnings:
        print(f"warning: {warning}")
    images, labels = load_image_tensor(train_rows), labels_tensor(train_rows)
    monitor = (load_image_tensor(test_rows), labels_tensor(test_rows))

    model = model_from_arch(arch_from_params(params, framing))
    load_backbone_weights(model, params.model.weights)
    fingerprint = resume_fingerprint(params, images, labels)
    resume = load_training_state(TRAIN_STATE, fingerprint, params.epochs)
    if resume is not None:
        print(f"train: continuing from the state of epoch {resume.epoch} ({TRAIN_STATE})")

    # DVCLive rewrites its metrics.json and appends to its plots after every epoch, so
    # `dvc exp show` follows a running (or queued) experiment, and `dvc plots show` one
    # running in the workspace.
    with Live(dir=str(LIVE_DIR), save_dvc_exp=False, dvcyaml=None) as live:

        def log(row: dict[str, float]) -> None:
            live.step = int(row["epoch"])
            for key, value in row.items():
                if key != "epoch":
                    live.log_metric(LIVE_NAMES.get(key, key), value)
            live.next_step()

        for row in resume.history if resume is not None else []:
            log(row)  # a resumed run's output folder starts empty: log the epochs done
        history = train(
            model,
            images,
            labels,
            train_params,
            params.epochs,
            device,
            monitor=monitor,
            resume=resume,
            save_state=lambda state: save_training_state(TRAIN_STATE, state, fingerprint),
            save_every=params.runtime.checkpoint_every,
            on_epoch=log,
            runtime=params.runtime,
        )
    if model.patches is not None:  # the bank: the good training images, final weights
        good = images[labels == 0]
        fit_patch_memory(model, good, params.runtime.inference_batch_size, device)
    save_checkpoint(MODEL, model, params, framing)
    summary = training_summary(history, params.epochs, len(train_rows), real_anomalies)
    summary |= {
        "batch_size_used": train_params.batch_size,
        "synthetic_anomalies_used": train_params.synthetic_anomalies,
        "synthetic_jitter_used": train_params.synthetic_jitter,
        "numerics": pinned(),
    }
    write_json(TRAIN_SUMMARY, summary)


if __name__ == "__main__":
    run_stage(main)
