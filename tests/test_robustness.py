"""Robust to what real users feed it: every bad input ends in one clear line, nothing
half-written, and nothing a user gives runs code.

The per-module cases live beside their code (test_images, test_mvtec_source, test_params,
test_training); this file holds what crosses modules: the stages run as a user runs them,
property-based fuzzing of the loaders and the params validator, and source audits.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
import yaml
from conftest import make_mvtec_tree
from helpers import REPO, TINY, make_project, merge_params, run_cmd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from metricad.data.images import check_image, load_mask, load_rgb
from metricad.errors import MetricadError
from metricad.files import atomic_path, read_csv, write_csv
from metricad.model.checkpoint import load_checkpoint
from metricad.params import Params, load_params, params_from_dict

PREPARED_MANIFEST = Path("data/prepared/manifest.csv")
SOURCES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "stages").glob("*.py")])
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    # Each example rewrites the same file in tmp_path, so sharing the fixture is fine.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _tiny(**update: object) -> dict:
    return merge_params(json.loads(json.dumps(TINY)), update)


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    """The stage's stderr, checked to be exactly one `error: ...` line."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


# --- Broken files stop `prepare` before the manifest is written --------------------------

BROKEN = {
    "truncated PNG": lambda path: path.write_bytes(path.read_bytes()[:-40]),
    "zero-byte file": lambda path: path.write_bytes(b""),
    "text file named .png": lambda path: path.write_text("just some notes\n"),
}


@pytest.mark.parametrize("where", ["test/cut/001.png", "ground_truth/color/000_mask.png"])
@pytest.mark.parametrize("broken", BROKEN)
def test_prepare_stops_on_a_broken_file_without_writing_the_manifest(tmp_path, broken, where):
    root = tmp_path / "mvtec"
    category_dir = make_mvtec_tree(root, counts={"train_good": 2, "color": 2, "cut": 2})
    BROKEN[broken](category_dir / where)
    project = make_project(tmp_path, _tiny(data={"source": "mvtec", "root": str(root)}))
    done = run_cmd([sys.executable, "stages/prepare.py"], project, check=False)
    line = _one_error_line(done)
    assert line.startswith(f"error: {category_dir / where}: not ")
    assert not (project / PREPARED_MANIFEST).exists()
    assert not (project / "metrics" / "data.json").exists()


def test_prepare_stops_on_a_mask_of_another_size_naming_both_files(tmp_path):
    root = tmp_path / "mvtec"
    category_dir = make_mvtec_tree(root, counts={"train_good": 2, "cut": 2})
    mask = category_dir / "ground_truth" / "cut" / "001_mask.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask)
    project = make_project(tmp_path, _tiny(data={"source": "mvtec", "root": str(root)}))
    done = run_cmd([sys.executable, "stages/prepare.py"], project, check=False)
    image = category_dir / "test" / "cut" / "001.png"
    assert _one_error_line(done) == (
        f"error: {mask}: mask is 32x32 but its image {image} is 64x64; "
        "masks must have their image's size"
    )
    assert not (project / PREPARED_MANIFEST).exists()


def test_prepare_with_mvtec_source_but_no_root(tmp_path):
    project = make_project(tmp_path, _tiny(data={"source": "mvtec"}))
    done = run_cmd([sys.executable, "stages/prepare.py"], project, check=False)
    assert _one_error_line(done) == (
        "error: params: data.root must be set when data.source is 'mvtec'"
    )
    assert not (project / "data").exists()


# --- Params typos through DVC -----------------------------------------------------------


@pytest.mark.slow
def test_dvc_exp_run_with_a_misspelt_key_fails_with_one_line(tmp_path):
    project = make_project(tmp_path, TINY)
    # DVC itself refuses to override a key that params.yaml lacks...
    done = run_cmd(["dvc", "exp", "run", "-S", "train.lrr=0.1"], project, check=False)
    assert done.returncode != 0
    assert "Could not override 'train.lrr'" in done.stdout + done.stderr
    # ... and when told to add it (+key), the stage refuses the unknown key.
    done = run_cmd(["dvc", "exp", "run", "-S", "+train.lrr=0.1"], project, check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "error: params: unknown key 'train.lrr' (did you mean 'train.lr'?)" in output
    assert not (project / PREPARED_MANIFEST).exists()


@pytest.mark.slow
def test_dvc_repro_with_a_typo_in_params_yaml_fails_with_one_line(tmp_path):
    project = make_project(tmp_path, TINY)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["embeding_dim"] = params["model"].pop("embedding_dim")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = run_cmd(["dvc", "repro"], project, check=False)
    assert done.returncode != 0
    expected = (
        "error: params: unknown key 'model.embeding_dim' (did you mean 'model.embedding_dim'?)"
    )
    assert expected in done.stdout + done.stderr
    assert not (project / PREPARED_MANIFEST).exists()


# --- Params: limits that would otherwise fail deep inside a library -----------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # numpy's RandomState (scikit-learn's t-SNE) and torch.manual_seed refuse larger seeds.
        ({"tsne": {"seed": 2**32}}, "tsne.seed must be between 0 and 4294967295"),
        ({"train": {"seed": -1}}, "train.seed must be between 0 and 4294967295"),
        ({"train": {"lr": 10**400}}, "train.lr must be a finite number"),
        ({"train": {"lr": "1e999"}}, "train.lr must be a finite number"),
        ({"epochs": 10**5000}, "epochs must be between 1 and 100000, got an integer too long"),
        ({"runtime": {"device": "x" * 5000}}, "runtime.device must be one of"),
        ({"train": {"bad\nkey": 1}}, r"unknown key 'train.bad\nkey'"),
    ],
)
def test_params_limits_are_one_short_line(values, message):
    with pytest.raises(MetricadError) as caught:
        params_from_dict(values)
    text = str(caught.value)
    assert message in text and "\n" not in text and len(text) < 200


# --- Checkpoints (the rest is in test_training.py) --------------------------------------


def test_a_plain_resnet_state_dict_is_not_taken_for_a_checkpoint(tmp_path):
    # The likely mix-up: the backbone's .pth (meant for model.weights) put at models/model.pt.
    path = tmp_path / "model.pt"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(MetricadError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == f"{path}: not a metricad checkpoint (run `dvc repro train`)"


@pytest.mark.parametrize(
    "text", ["epochs: " + "9" * 5000, "epochs: " + "[" * 5000, "epochs: \x00", "\ufeff- 1"]
)
def test_absurd_params_yaml_is_one_line(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MetricadError) as caught:
        load_params(path)
    assert str(caught.value).startswith(f"{path}: ") or "params:" in str(caught.value)
    assert "\n" not in str(caught.value)


# --- Interrupted writes ---------------------------------------------------------------


def test_failure_inside_atomic_path_leaves_no_target_and_no_temp_file(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a ta")
        raise RuntimeError("killed mid-write")
    assert list((tmp_path / "out").iterdir()) == []

    target.write_text("the finished previous version\n")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "the finished previous version\n"
    assert list((tmp_path / "out").iterdir()) == [target]


# (call, index of the written path among the positional arguments; None: the receiver)
_WRITERS = {
    "np.save": 0,
    "np.savez": 0,
    "torch.save": 1,
    "json.dump": 1,
    "yaml.safe_dump": 1,
    "to_csv": 0,
    "to_json": 0,
    "savefig": 0,
    "save": 0,  # PIL's Image.save
    "write_text": None,
    "write_bytes": None,
}


def _written_target(call: ast.Call) -> ast.expr | None:
    """The path (or handle) a write call writes to, or None when `call` does not write."""
    name = ast.unparse(call.func)
    method = call.func.attr if isinstance(call.func, ast.Attribute) else name
    if name == "open":
        mode = call.args[1] if len(call.args) > 1 else None
        mode = next((k.value for k in call.keywords if k.arg == "mode"), mode)
        written = isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax+")
        return call.args[0] if written else None
    key = name if name in _WRITERS else method
    if key not in _WRITERS:
        return None
    if _WRITERS[key] is None:
        return call.func.value if isinstance(call.func, ast.Attribute) else None
    index = _WRITERS[key]
    return call.args[index] if len(call.args) > index else None


def _atomic_names(tree: ast.AST) -> set[str]:
    """Names bound by `with atomic_path(...) as x`, and handles `open(x, ...)` on them."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        for item in node.items:
            call, target = item.context_expr, item.optional_vars
            if not (isinstance(call, ast.Call) and isinstance(target, ast.Name)):
                continue
            func = ast.unparse(call.func)
            on_atomic = func == "open" and ast.unparse(call.args[0]) in names
            if func == "atomic_path" or on_atomic:
                names.add(target.id)
    return names


def test_every_file_is_written_through_atomic_path():
    # Stages and library write only through metricad.files (atomic_path, write_json) and the
    # helpers built on it (save_png, save_figure, write_manifest, save_checkpoint...).
    offenders = []
    for source in SOURCES:
        tree = ast.parse(source.read_text(), str(source))
        safe = _atomic_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            target = _written_target(node)
            if target is not None and not (isinstance(target, ast.Name) and target.id in safe):
                offenders.append(f"{source.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


# --- Nothing a user gives runs code -----------------------------------------------------

_CODE_RUNNING = {
    "pickle.load",
    "pickle.loads",
    "yaml.load",
    "yaml.full_load",
    "yaml.unsafe_load",
    "pd.read_pickle",
    "joblib.load",
    "torch.jit.load",
    "eval",
    "exec",
}


def test_no_loader_can_run_code_from_a_file():
    offenders = []
    for source in SOURCES:
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            weights_only = keywords.get("weights_only")
            allow_pickle = keywords.get("allow_pickle")
            if (
                name in _CODE_RUNNING
                or (
                    name == "torch.load"
                    and not (isinstance(weights_only, ast.Constant) and weights_only.value is True)
                )
                or (name == "np.load" and allow_pickle is not None)
            ):
                offenders.append(f"{source.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


def test_the_audits_see_what_they_look_for():
    # Guards the two audits above against passing because they match nothing.
    calls = [
        node
        for node in ast.walk(ast.parse((REPO / "src/metricad/model/checkpoint.py").read_text()))
        if isinstance(node, ast.Call)
    ]
    assert any(ast.unparse(c.func) == "torch.load" for c in calls)
    assert any(_written_target(c) is not None for c in calls)  # torch.save(..., tmp)
    bad = ast.parse("with open('x.csv', 'w') as f:\n    df.to_csv('y.csv')\ntorch.save(m, 'z')")
    flagged = [c for c in ast.walk(bad) if isinstance(c, ast.Call) and _written_target(c)]
    assert len(flagged) == 3


# --- Property-based: only MetricadError (or success) ever comes out ----------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I"]


def _read_all(path: Path) -> None:
    """Every reader on `path`: each either returns a well-formed array or raises MetricadError."""
    for reader in (load_rgb, load_mask, check_image):
        try:
            result = reader(path)
        except MetricadError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            continue
        if reader is load_rgb:
            assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3
        elif reader is load_mask:
            assert result.dtype == bool and result.ndim == 2


def _image_bytes(mode: str, width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I"):
        image = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
        if mode == "I":
            image = image.convert("I")
    else:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        image = image.convert(mode)
    buffer = io.BytesIO()
    # PNG cannot hold 32-bit "I" in this Pillow; TIFF (also accepted) can.
    image.save(buffer, format="TIFF" if mode == "I" else "PNG")
    return buffer.getvalue()


valid_images = st.builds(
    _image_bytes,
    st.sampled_from(MODES),
    st.integers(1, 64),
    st.integers(1, 64),
    st.integers(0, 2**16),
)


@PROPERTY
@given(values=st.lists(st.floats(allow_nan=False), min_size=1, max_size=40))
def test_a_written_table_reads_back_every_float_bit_for_bit(tmp_path, values):
    """predictions.csv's scores are the pipeline's bytes only if the CSV round trip keeps every
    bit (sign of zero, subnormals, infinities), without pandas' deprecated float_precision."""
    written = np.array(values, dtype=np.float64)
    write_csv(tmp_path / "table.csv", pd.DataFrame({"path": "a,b", "score": written}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = read_csv(tmp_path / "table.csv")
    assert (table["path"] == "a,b").all()
    read = table["score"].to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(read.view(np.uint64), written.view(np.uint64))


@PROPERTY
@given(data=st.one_of(st.binary(max_size=512), st.binary(max_size=512).map(PNG_SIGNATURE.__add__)))
def test_random_bytes_give_metricad_error(tmp_path, data):
    path = tmp_path / "random.png"
    path.write_bytes(data)
    _read_all(path)


@PROPERTY
@given(data=valid_images)
def test_valid_images_of_any_mode_and_size_load(tmp_path, data):
    path = tmp_path / "valid.png"
    path.write_bytes(data)
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    assert load_rgb(path).shape == (height, width, 3)
    assert load_mask(path).shape == (height, width)
    assert check_image(path) == (width, height)


# PIL warns (and goes on) about some damaged TIFF tags; only exceptions matter here.
@pytest.mark.filterwarnings("ignore::UserWarning")
@PROPERTY
@given(data=valid_images, cut=st.floats(0.0, 1.0, exclude_max=True), flip=st.booleans())
def test_truncated_or_corrupted_images_give_metricad_error(tmp_path, data, cut, flip):
    damaged = bytearray(data)
    position = int(cut * len(data))
    if flip:
        damaged[position] ^= 0xFF
    else:
        del damaged[position:]
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(damaged))
    _read_all(path)


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["none", "imagenet", "mvtec", "synthetic", "adacos", "1e-3", ".", ""])
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _schema_dicts(cls: type) -> st.SearchStrategy:
    """Dicts shaped like `cls` (real keys, nested sections) with random values, plus junk keys."""
    fields = Params.__dataclass_fields__ if cls is Params else cls.__dataclass_fields__
    optional = {}
    for name, spec in fields.items():
        factory = spec.default_factory if callable(spec.default_factory) else None
        # A section's default factory is its dataclass; a list param's is a function.
        section = factory if isinstance(factory, type) else None
        optional[name] = _schema_dicts(section) | _values if section is not None else _values
    return st.fixed_dictionaries({}, optional=optional) | st.dictionaries(
        st.text(max_size=8), _values, max_size=2
    )


def _validate(values: object) -> None:
    try:
        params = params_from_dict(values)
    except MetricadError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(params, Params)


@PROPERTY
@given(values=_schema_dicts(Params) | _values)
def test_random_params_give_params_or_metricad_error(values):
    _validate(values)


@PROPERTY
@given(text=st.text(max_size=200))
def test_random_params_yaml_gives_params_or_metricad_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "params.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_params(path)
        except MetricadError as error:
            assert "\n" not in str(error)


# --- Acceptance: a real-data-like tree end to end --------------------------------------


@pytest.mark.slow
def test_pipeline_on_grayscale_palette_rgba_tree_with_a_missing_mask(tmp_path):
    root = tmp_path / "mvtec"
    category_dir = make_mvtec_tree(
        root,
        size=96,
        counts={"train_good": 8, "test_good": 4, "color": 4, "cut": 4},
        modes=("L", "P", "RGBA", "I;16"),
        mask_value=1,
        without_mask={"cut/001"},
    )
    (category_dir / "train" / "good" / ".DS_Store").write_bytes(b"\x00\x01junk")
    (category_dir / "test" / "cut" / "notes.txt").write_text("inspector's notes")
    params = _tiny(data={"source": "mvtec", "root": str(root)}, gradcam={"train_images": 6})
    project = make_project(tmp_path, params)
    # Up to the maps, the last stage that reads the masks: the stages after read only the
    # embeddings and scores (with missing masks end to end: tests/test_own_photos.py).
    done = run_cmd(["dvc", "repro", "gradcam"], project)
    lacking = category_dir / "test" / "cut" / "001.png"
    assert (
        f"warning: {category_dir / 'ground_truth'}: no mask for 1 defect image(s): {lacking}"
        in (done.stdout)
    )
    data = json.loads((project / "metrics" / "data.json").read_text())
    gradcam = json.loads((project / "metrics" / "gradcam.json").read_text())
    assert data["anomalous_without_mask"] == 1
    # 4 anomalous train images < gradcam.train_images (6): the image is mapped wherever it is.
    assert gradcam["anomalous_without_mask"] == 1
    assert gradcam["train_images_used"] == 4
    assert (
        "warning: gradcam.train_images=6 is above the number of anomalous training images (4); "
        "mapped 4" in done.stdout
    )
