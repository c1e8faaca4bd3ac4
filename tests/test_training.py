"""Training, checkpoints and resumption."""

import dataclasses
import pickle
import urllib.error
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from metricad.data.batches import augment, crop, shift
from metricad.errors import MetricadError
from metricad.model.checkpoint import load_backbone_weights, load_checkpoint, save_checkpoint
from metricad.model.recipe import batches, learning_rate, weight_average
from metricad.model.resnet import BACKBONE_LAYERS, resnet18_layers
from metricad.model.resume import load_training_state, resume_fingerprint, save_training_state
from metricad.model.torch_model import arch_from_params, model_from_arch
from metricad.model.training import train
from metricad.model.training_run import TrainingState
from metricad.params import params_from_dict

PARAMS = params_from_dict(
    {
        "epochs": 4,
        "resize": {"size": 32},
        "model": {"embedding_dim": 16},
        "train": {"batch_size": 4, "seed": 3, "monitor_every": 3},
    }
)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (10, 3, 32, 32), generator=generator, dtype=torch.uint8)
    return images, torch.tensor([0, 1] * 5)


def _fresh_model():
    torch.manual_seed(0)
    return model_from_arch(arch_from_params(PARAMS))


def _run(**kwargs):
    model = _fresh_model()
    images, labels = _data()
    history = train(
        model,
        images,
        labels,
        PARAMS.train,
        PARAMS.epochs,
        torch.device("cpu"),
        progress=False,
        **kwargs,
    )
    return model, history


def test_batches_never_leave_a_single_image():
    sizes = [len(b) for b in batches(9, 4, torch.Generator().manual_seed(0))]
    assert sizes == [4, 5] and sum(sizes) == 9


def test_training_is_deterministic_and_logs_each_epoch():
    first, history = _run(monitor=_data())
    second, _ = _run(monitor=_data())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    # The test split every train.monitor_every (3) epochs and at the last one.
    monitored = [row["epoch"] for row in history if "test_loss" in row]
    assert monitored == [3, 4]
    assert {"train_loss", "train_accuracy", "test_accuracy"} <= set(history[2])
    # Handed back in the default layout (CUDA trains in channels_last).
    assert all(p.is_contiguous() for p in first.parameters())
    for key, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[key]), key
    assert not first.training


def test_interrupted_run_resumes_to_identical_weights():
    reference, reference_history = _run()
    saved: list[TrainingState] = []

    def save_then_die(state: TrainingState) -> None:
        saved.append(state)
        raise KeyboardInterrupt  # killed right after the epoch-2 state was written

    with pytest.raises(KeyboardInterrupt):
        _run(save_state=save_then_die, save_every=2)
    assert saved[-1].epoch == 2
    torch.manual_seed(123)  # a restarted process starts from another global RNG state
    resumed, history = _run(resume=saved[-1])
    assert history == reference_history
    for key, tensor in reference.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[key]), key


def test_training_state_file_round_trip_and_fingerprint(tmp_path):
    saved: list[TrainingState] = []
    _run(save_state=saved.append, save_every=2)
    path = tmp_path / "state.pt"
    save_training_state(path, saved[0], "abc")
    loaded = load_training_state(path, "abc", epochs=4)
    assert loaded is not None and loaded.epoch == 2
    assert load_training_state(path, "other params", epochs=4) is None
    assert load_training_state(tmp_path / "none.pt", "abc", epochs=4) is None
    # A state past the run's epoch count is not where that run passes.
    assert load_training_state(path, "abc", epochs=1) is None


# The default recipe's shape: warm-up, then a constant rate, with the weight average.
CONSTANT = dataclasses.replace(PARAMS.train, lr_schedule="constant", warmup_epochs=1)


def _train_for(epochs: int, **kwargs) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    model = _fresh_model()
    images, labels = _data()
    history = train(
        model, images, labels, CONSTANT, epochs, torch.device("cpu"), progress=False, **kwargs
    )
    return model, history


def test_snapshot_of_a_longer_run_is_the_shorter_run_byte_for_byte():
    """With a schedule that ignores the epoch count, the 3-epoch state of a 7-epoch run is a
    3-epoch run (the survey measures 300 and 500 epochs inside one 1000-epoch run), and a
    finished 3-epoch run continued to 7 epochs is the 7-epoch run, history included."""
    assert CONSTANT.ema_decay > 0 and CONSTANT.monitor_every == 3
    states: list[TrainingState] = []
    long_model, long_history = _train_for(7, save_state=states.append, save_every=3)
    short_model, short_history = _train_for(3, monitor=_data())
    at_three = next(s for s in states if s.epoch == 3).final_weights()
    for key, tensor in short_model.state_dict().items():
        assert torch.equal(tensor, at_three[key]), key

    short_states: list[TrainingState] = []
    _train_for(2, monitor=_data(), save_state=short_states.append)  # monitors epoch 2 (its last)
    torch.manual_seed(123)  # another process
    continued, continued_history = _train_for(7, monitor=_data(), resume=short_states[-1])
    fresh, fresh_history = _train_for(7, monitor=_data())
    assert continued_history == fresh_history
    assert [row["epoch"] for row in fresh_history if "test_loss" in row] == [3, 6, 7]
    for key, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, continued.state_dict()[key]), key
    assert any(not torch.equal(t, long_model.state_dict()[k]) for k, t in at_three.items())


def test_fingerprint_ignores_the_epoch_count_only_when_the_schedule_does():
    images, labels = _data()

    def fingerprint(epochs: int, schedule: str) -> str:
        params = dataclasses.replace(
            PARAMS, epochs=epochs, train=dataclasses.replace(CONSTANT, lr_schedule=schedule)
        )
        return resume_fingerprint(params, images, labels)

    assert fingerprint(300, "constant") == fingerprint(1000, "constant")
    assert fingerprint(300, "cosine") != fingerprint(1000, "cosine")


def test_checkpoint_round_trip_in_eval_mode(tmp_path):
    model, _ = _run()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, PARAMS)
    loaded = load_checkpoint(path, expected_arch=arch_from_params(PARAMS))
    assert not any(module.training for module in loaded.modules())
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key
    assert float(loaded.head.scale) == float(model.head.scale)


def _edited_checkpoint(tmp_path, edit) -> Path:
    """A trained network's checkpoint file, changed by `edit` (in place on the loaded dict)."""
    model, _ = _run()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, PARAMS)
    checkpoint = torch.load(path, weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, path)
    return path


def test_checkpoint_without_head_is_refused(tmp_path):
    path = _edited_checkpoint(tmp_path, lambda c: c["state_dict"].pop("head.weight"))
    with pytest.raises(MetricadError, match=r"missing tensor\(s\) head.weight"):
        load_checkpoint(path)


def test_a_checkpoint_from_before_model_standardize_loads_as_not_standardising(tmp_path):
    path = _edited_checkpoint(tmp_path, lambda c: c["arch"].pop("standardize"))
    loaded = load_checkpoint(path)
    assert isinstance(loaded.encoder.standardize, torch.nn.Identity)


def test_checkpoint_from_other_architecture_is_refused(tmp_path):
    model, _ = _run()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, PARAMS)
    expected = arch_from_params(
        params_from_dict({"resize": {"size": 32}, "model": {"head": "arcface"}})
    )
    with pytest.raises(MetricadError, match="trained with embedding_dim=16"):
        load_checkpoint(path, expected_arch=expected)


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_that_runs_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"format": "metricad-checkpoint/1", "x": _Exploit()}, handle)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's pickle-protocol note must not reach the user
        with pytest.raises(MetricadError, match="refused"):
            load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken"])
def test_broken_checkpoint_files(tmp_path, content):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(MetricadError, match="model.pt"):
        load_checkpoint(path)
    with pytest.raises(MetricadError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_resnet18_layers_are_torchvisions_bit_for_bit():
    """metricad's own ResNet-18 (no torchvision import) draws torchvision's initial weights from
    the same seed, leaves the generator where torchvision does, and computes the same bits."""
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    after_reference = torch.random.get_rng_state()
    torch.manual_seed(3)
    ours = torch.nn.Sequential(resnet18_layers())
    assert torch.equal(torch.random.get_rng_state(), after_reference)
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    state = ours.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    images = torch.randn(4, 3, 64, 64)
    features = torch.nn.Sequential(*[getattr(reference, name) for name in BACKBONE_LAYERS])
    for mode in (True, False):
        features.train(mode), ours.train(mode)
        assert torch.equal(ours(images), features(images))


def test_weight_average_is_torchs_ema_bit_for_bit():
    """The weight average's lean update gives what torch's AveragedModel with its EMA gives,
    parameters and buffers (BatchNorm statistics and step counts), step after step."""
    torch.manual_seed(0)
    model = _fresh_model()
    ours = weight_average(model, 0.9)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images, labels), labels).backward()
        optimizer.step()
        ours.update_parameters(model)
        reference.update_parameters(model)
    expected = reference.state_dict()
    assert list(ours.state_dict()) == list(expected)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert int(ours.n_averaged) == 3


def test_local_resnet18_weights_file(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = _fresh_model()
    load_backbone_weights(model, str(path))
    assert torch.equal(model.encoder.backbone.conv1.weight, reference.conv1.weight)
    assert torch.equal(
        model.encoder.backbone.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var
    )
    partial = {k: v for k, v in reference.state_dict().items() if not k.startswith("layer4")}
    torch.save(partial, path)
    with pytest.raises(MetricadError, match=r"missing tensor\(s\) layer4"):
        load_backbone_weights(_fresh_model(), str(path))


def test_imagenet_weights_offline_says_how_to_provide_them(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(
        torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline
    )
    with pytest.raises(MetricadError) as caught:
        load_backbone_weights(_fresh_model(), "imagenet")
    message = str(caught.value)
    assert "model.weights: imagenet" in message and "set model.weights" in message
    assert "resnet18-" in message and "\n" not in message


def test_same_weights_give_byte_identical_checkpoint_files(tmp_path):
    model, _ = _run()
    first, second = tmp_path / "a.pt", tmp_path / "b" / "model.pt"
    save_checkpoint(first, model, PARAMS)
    save_checkpoint(second, model, PARAMS)
    assert first.read_bytes() == second.read_bytes()


def test_augment_moves_each_image_by_its_own_draw():
    """The batched flips and turns equal the per-image definition, draw for draw."""
    images = torch.randint(0, 256, (24, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    out = augment(images.to(torch.uint8), torch.Generator().manual_seed(1))
    choices = torch.randint(0, 8, (24,), generator=torch.Generator().manual_seed(1)).tolist()
    assert len(set(choices)) == 8
    for image, moved, choice in zip(images.to(torch.uint8), out, choices, strict=True):
        expected = image.flip(-1) if choice & 4 else image
        assert torch.equal(moved, torch.rot90(expected, choice & 3, dims=(-2, -1)))


def test_shift_moves_each_image_by_its_own_offset_over_a_reflected_border():
    images = torch.arange(2 * 3 * 5 * 6, dtype=torch.int64).view(2, 3, 5, 6).to(torch.uint8)
    out = shift(images, 2, torch.Generator().manual_seed(3))
    offsets = torch.randint(0, 5, (2, 2), generator=torch.Generator().manual_seed(3)).tolist()
    reflected_rows, reflected_cols = [2, 1, 0, 1, 2, 3, 4, 3, 2], [2, 1, 0, 1, 2, 3, 4, 5, 4, 3]
    assert out.shape == images.shape and out.dtype == torch.uint8
    for image, moved, (top, left) in zip(images, out, offsets, strict=True):
        rows = reflected_rows[top : top + 5]
        cols = reflected_cols[left : left + 6]
        assert torch.equal(moved, image[:, rows][:, :, cols])
    assert offsets[0] != offsets[1]  # the two images got their own draws
    assert torch.equal(shift(images, 0, torch.Generator()), images)


def test_crop_takes_each_image_its_own_square():
    images = torch.arange(3 * 3 * 6 * 7, dtype=torch.int64).view(3, 3, 6, 7).to(torch.uint8)
    out = crop(images, 4, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    tops = torch.randint(0, 3, (3,), generator=generator).tolist()
    lefts = torch.randint(0, 4, (3,), generator=generator).tolist()
    assert out.shape == (3, 3, 4, 4) and out.dtype == torch.uint8
    for image, square, top, left in zip(images, out, tops, lefts, strict=True):
        assert torch.equal(square, image[:, top : top + 4, left : left + 4])
    assert len(set(zip(tops, lefts, strict=True))) > 1  # each image its own draw


def test_training_on_crops_sees_crops_and_keeps_whole_images_for_the_rest():
    """train.crop: every training forward pass gets crop-size images; the monitor (like every
    stage after training) the whole images, through the average-pooling neck."""
    params = params_from_dict(
        {
            "resize": {"size": 40},
            "model": {"embedding_dim": 16, "neck": "avgpool"},
            "train": {"batch_size": 4, "seed": 3, "crop": 32, "monitor_every": 1},
        }
    )
    torch.manual_seed(0)
    model = model_from_arch(arch_from_params(params))
    seen = []
    model.encoder.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[-1]))
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (10, 3, 40, 40), generator=generator, dtype=torch.uint8)
    labels = torch.tensor([0, 1] * 5)
    history = train(
        model,
        images,
        labels,
        params.train,
        1,
        torch.device("cpu"),
        (images, labels),
        progress=False,
    )
    assert set(seen) == {32, 40} and seen[0] == 32 and "test_accuracy" in history[-1]


def test_learning_rate_warms_up_then_follows_its_schedule():
    cosine = dataclasses.replace(PARAMS.train, lr=1.0, lr_schedule="cosine")
    rates = [learning_rate(cosine, step, 100, 10) for step in range(100)]
    assert rates[:3] == [0.1, 0.2, pytest.approx(0.3)] and rates[9] == 1.0
    assert rates[10] == 1.0 and all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert 0 < rates[-1] < 0.001
    constant = dataclasses.replace(cosine, lr_schedule="constant")
    assert [learning_rate(constant, s, 100, 0) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
