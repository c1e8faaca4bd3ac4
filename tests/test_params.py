"""params.yaml validation: every mistake is one MetricadError line that names the key."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from metricad.errors import MetricadError
from metricad.params import Params, load_params, params_from_dict


def test_committed_params_are_valid_demo_defaults():
    params = load_params("params.yaml")
    assert params.data.source == "synthetic"
    assert params.model.weights == "none"
    assert params.epochs == 150


def test_missing_keys_take_defaults():
    assert params_from_dict({}) == Params()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, "epochs must be between 1"),
        (
            {"score": {"scores": ["softmax", "gaussian"], "verdict_score": "knn"}},
            "score.verdict_score is 'knn', which score.scores does not list",
        ),
        ({"train": {"lr_schedule": "step"}}, "train.lr_schedule must be one of"),
        (
            {"train": {"max_shift": 96}, "resize": {"size": 96}},
            "train.max_shift must be below resize.size (96), got 96",
        ),
        (
            {"train": {"crop": 64}, "model": {"neck": "avgpool"}, "resize": {"size": 64}},
            "train.crop must be 0 or from 32 to below resize.size (64) and needs model.neck "
            "avgpool or auto",
        ),
        (
            {"train": {"crop": 16}, "model": {"neck": "avgpool"}, "resize": {"size": 64}},
            "got crop 16 with neck avgpool",
        ),
        (
            {"train": {"crop": 48}, "resize": {"size": 64}},
            "got crop 48 with neck flatten",
        ),
        ({"split": {"validation_fraction": 0.95}}, "split.validation_fraction must be between"),
        ({"epochs": "300"}, "epochs must be an integer"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"epocs": 5}, "unknown key 'epocs' (did you mean 'epochs'?)"),
        ({"train": {"lrr": 0.1}}, "unknown key 'train.lrr' (did you mean 'train.lr'?)"),
        ({"train": {"lr": "fast"}}, "train.lr must be a number"),
        ({"train": {"lr": float("nan")}}, "train.lr must be a finite number"),
        ({"runtime": {"device": "tpu"}}, "runtime.device must be one of 'auto', 'cpu', 'cuda'"),
        ({"train": {"threads": 4}}, "unknown key 'train.threads' (it moved: runtime.threads)"),
        ({"evaluate": {"knn_k": 5}}, "unknown key 'evaluate.knn_k' (it moved: score.knn.k)"),
        ({"evaluate": {"scores": ["knn"]}}, "'evaluate.scores' (it moved: score.scores)"),
        (
            {"model": {"arcface_margin": 0.3}},
            "'model.arcface_margin' (it moved: model.arcface.margin)",
        ),
        ({"data": {"masks": "m"}}, "unknown key 'data.masks' (it moved: data.folder.masks)"),
        (
            {"score": {"knn": {"kk": 5}}},
            "unknown key 'score.knn.kk' (did you mean 'score.knn.k'?)",
        ),
        ({"score": {"knn": 5}}, "score.knn must be a section"),
        ({"data": {"folder": {"good": "a/b"}}}, "data.folder.good must be a folder name"),
        ({"split": {"test_fraction": 0.95}}, "split.test_fraction must be between"),
        ({"resize": {"size": 7}}, "resize.size must be between 32 and 2048"),
        ({"split": {"anomalous_train_fraction": 1.5}}, "split.anomalous_train_fraction"),
        ({"model": {"head": "softmax"}}, "model.head must be one of 'adacos', 'arcface'"),
        ({"model": "resnet"}, "model must be a section"),
        ({"data": {"category": "../x"}}, "data.category must be a folder name"),
        ({"model": {"weights": "missing.pth"}}, "file 'missing.pth' does not exist"),
        ({"gradcam": {"layer": "layer5"}}, "gradcam.layer must be one of"),
        ({"gradcam": {"flat_fraction": 0}}, "gradcam.flat_fraction must be between 0.01 and 1.0"),
        ({"train": {"synthetic_anomalies": "paste"}}, "train.synthetic_anomalies must be one of"),
        ({"train": {"synthetic_share": 2}}, "train.synthetic_share must be between 0.0 and 1.0"),
        ({"score": {"scores": "knn"}}, "score.scores must be a non-empty list, got 'knn'"),
        ({"score": {"scores": []}}, "score.scores must be a non-empty list"),
        ({"score": {"scores": ["knn", "lof"]}}, "score.scores[1] must be one of 'softmax'"),
        ({"score": {"scores": ["knn", "knn"]}}, "score.scores lists a value twice"),
        ({"score": {"knn": {"k": 0}}}, "score.knn.k must be between 1"),
        ({"resize": {"framing": "rotate"}}, "resize.framing must be one of 'whole'"),
        ({"resize": {"object_band": {"band": 2}}}, "resize.object_band.band must be between"),
        ({"resize": {"object_axis": {"contrast": 0}}}, "resize.object_axis.contrast must be"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(MetricadError) as caught:
        params_from_dict(values)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_score_list_is_read():
    params = params_from_dict({"score": {"scores": ["gaussian", "softmax"]}})
    assert params.score.scores == ["gaussian", "softmax"]


def test_yaml_exponent_strings_are_numbers():
    assert params_from_dict({"train": {"lr": "1e-3"}}).train.lr == pytest.approx(0.001)


def test_unreadable_files(tmp_path):
    with pytest.raises(MetricadError, match="file not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(MetricadError, match="not valid YAML"):
        load_params(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(MetricadError, match="mapping"):
        load_params(listing)


def test_the_committed_params_yaml_holds_the_defaults():
    """One source of truth: params.yaml is the defaults, written out (every key, same value)."""
    committed = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    assert params_from_dict(committed) == Params()
    assert _keys(committed) == _keys(dataclasses.asdict(Params()))


def _keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        keys |= _keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return keys


def test_without_torch_the_heads_and_scores_settings_wait_for_the_stages_that_load_it():
    """prepare, resize and tsne read params without the registries that import torch: the
    entries' own subsections there pass unchecked; everything else is checked as always."""
    deferred = {"score": {"knn": {"k": "many"}}, "model": {"arcface": {"margin": -1}}}
    params = params_from_dict(deferred, without_torch=True)
    assert params.score.scores == ["softmax", "knn", "gaussian"]
    assert not hasattr(params.score, "knn")  # unset: no stage without torch reads it
    for section, message in (("score", "score.knn.k must be"), ("model", "model.arcface.margin")):
        with pytest.raises(MetricadError, match=message):
            params_from_dict({section: deferred[section]})
    for values, message in (
        ({"score": {"knn": 3}}, "unknown key 'score.knn'"),  # a subsection, or a typo
        ({"score": {"threshold_quantil": 0.9}}, "unknown key 'score.threshold_quantil'"),
        ({"data": {"folder": {"goood": "ok"}}}, "unknown key 'data.folder.goood'"),
        ({"resize": {"size": 8}}, "resize.size must be between 32"),
    ):
        with pytest.raises(MetricadError, match=re.escape(message)):
            params_from_dict(values, without_torch=True)


def test_prepare_resize_and_tsne_load_no_torch():
    check = (
        "import runpy, sys\n"
        "from metricad.params import load_params\n"
        "for stage in ('prepare', 'resize', 'tsne'):\n"
        "    runpy.run_path(f'stages/{stage}.py')\n"  # its imports, not its main()
        "load_params('params.yaml', without_torch=True)\n"
        "print(sorted(m for m in ('torch', 'metricad.model.heads', 'metricad.scoring')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
