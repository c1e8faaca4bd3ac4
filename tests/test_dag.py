"""dvc.yaml tells the truth about every stage: its code deps are exactly the stage script and
the library modules it imports (the whole import closure), its data and model deps and outs
are exactly the paths.py places the script uses, and its params cover every param its code
reads (param_reads.py, by reading the code) and nothing it does not. A module or param
missing there would let `dvc repro` call stale outputs up to date; one too many reruns a
stage for nothing. The registries that reading params imports by name, to check each entry's
settings (validation.hosted_registry), are not followed: validation decides no output."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
from pathlib import Path

import yaml
from param_reads import param_reads

from metricad.params import ModelParams

REPO = Path(__file__).resolve().parents[1]
LIBRARY = "metricad"
# numerics.py reads these from params.yaml itself, before the params are loaded (they pin the
# libraries' kernels and threads at import): every stage that imports it reads them.
NUMERICS = ("src/metricad/numerics.py", {"runtime.threads", "runtime.cpu_kernels"})


def _module_file(src: Path, dotted: str) -> Path | None:
    path = src.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(file: Path, src: Path) -> set[Path]:
    """The library files a file imports directly (`import metricad.x`, `from metricad.x import
    y`, `from metricad import x`; a package's import includes its __init__)."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name == LIBRARY or name.startswith(f"{LIBRARY}."):
                parts = name.split(".")
                # A package on the way (metricad.report.tables) imports its __init__ too.
                for depth in range(2, len(parts) + 1):
                    module = _module_file(src, ".".join(parts[:depth]))
                    if module is not None:
                        found.add(module)
    # A registry package (registry.import_entries) runs every module beside its __init__.
    if file.name == "__init__.py" and "import_entries(__name__, __path__)" in file.read_text():
        found |= set(file.parent.glob("*.py")) - {file}
    return found - {src / LIBRARY / "__init__.py"}


def import_closure(script: Path, src: Path) -> set[Path]:
    """Every library file `script` runs: its imports, theirs, and so on."""
    closure: set[Path] = set()
    todo = [script]
    while todo:
        for module in _imported(todo.pop(), src) - closure:
            closure.add(module)
            todo.append(module)
    return closure


def dag_problems(
    stages: dict, closures: dict[str, set[str]], reads: dict[str, set[str]]
) -> list[str]:
    """What dvc.yaml's `stages` get wrong, one line each: `closures` maps a stage to the code
    files it runs (relative paths), `reads` to the params it read."""
    problems = []
    for name, stage in stages.items():
        deps = {str(dep) for dep in stage.get("deps", [])}
        code = {dep for dep in deps if dep.endswith(".py")}
        # A registry package is listed as its folder: a new entry file is covered unedited.
        folders = {dep for dep in deps if dep.startswith("src/") and not dep.endswith(".py")}
        covered = {f for f in closures[name] if any(f.startswith(f"{d}/") for d in folders)}
        for missing in sorted(closures[name] - code - covered):
            problems.append(f"stage {name} runs {missing}, which its deps do not list")
        for extra in sorted(code - closures[name]):
            problems.append(f"stage {name} lists {extra} in its deps but does not run it")
        for folder in sorted(folders):
            if not any(f.startswith(f"{folder}/") for f in covered):
                problems.append(f"stage {name} lists {folder} in its deps but runs nothing in it")
        declared, read = stage.get("params", []), reads[name]

        def covers(entry: str, key: str) -> bool:
            return key == entry or key.startswith(f"{entry}.")

        for key in sorted(read):
            if not any(covers(entry, key) for entry in declared):
                problems.append(f"stage {name} reads param {key}, which its params do not list")
        for entry in declared:
            if not any(covers(entry, key) for key in read):
                problems.append(f"stage {name} lists param {entry} but reads none of it")
    return problems


def _pipeline(repo: Path) -> tuple[dict, dict, dict]:
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    closures, reads = {}, {}
    for name, stage in stages.items():
        script = repo / stage["cmd"].split()[-1]
        library = import_closure(script, repo / "src")
        closures[name] = {str(f.relative_to(repo)) for f in {script, *library}}
        reads[name] = param_reads(script, library)
        if NUMERICS[0] in closures[name]:
            reads[name] |= NUMERICS[1]
    return stages, closures, reads


def test_dvc_yaml_declares_what_every_stage_imports_and_reads():
    stages, closures, reads = _pipeline(REPO)
    assert set(stages) == set(closures) and all(reads.values())
    assert dag_problems(stages, closures, reads) == []


def _reads_of(tmp_path: Path, library: str, script: str) -> set[str]:
    (tmp_path / "lib.py").write_text(library)
    (tmp_path / "stage.py").write_text(script)
    return param_reads(tmp_path / "stage.py", {tmp_path / "lib.py"})


def test_a_param_read_on_any_branch_of_reachable_code_is_found(tmp_path):
    """Reading, not running: a branch no run takes still counts, a function the stage never
    reaches does not, and a section handed to an annotated function is followed."""
    library = (
        "from metricad.params import TrainParams, TsneParams\n"
        "def fit(train: TrainParams, fast: bool):\n"
        "    if fast:\n"
        "        return train.lr\n"
        "    return train.batch_size\n"
        "def unused(tsne: TsneParams):\n"
        "    return tsne.perplexity\n"
    )
    script = (
        "from metricad.params import load_params\n"
        "from lib import fit\n"
        "def main():\n"
        "    params = load_params()\n"
        "    section, seed = params.train, params.split.seed\n"
        "    fit(section, False)\n"
    )
    assert _reads_of(tmp_path, library, script) == {"train.lr", "train.batch_size", "split.seed"}


def test_params_reach_by_return_annotation_registry_entry_and_method(tmp_path):
    library = (
        "import dataclasses\n"
        "from metricad.params import Params, ResizeParams, TrainParams, TsneParams\n"
        "def adjusted(params: Params) -> tuple[TrainParams, list[str]]:\n"
        "    return params.train, []\n"
        "@SOURCES.register('toy')\n"
        "def toy(tsne: TsneParams):\n"
        "    return tsne.seed\n"
        "class Net:\n"
        "    def forward(self, resize: ResizeParams):\n"
        "        return dataclasses.asdict(resize)\n"
        "    def never_called(self, tsne: TsneParams):\n"
        "        return tsne.max_iter\n"
    )
    script = (
        "from metricad.params import load_params\n"
        "from lib import Net, adjusted\n"
        "PARAMS = load_params()\n"
        "def main():\n"
        "    train, warnings = adjusted(PARAMS)\n"
        "    Net()(PARAMS.resize)\n"
        "    print(f'{train.warmup_epochs} {PARAMS.model}')\n"
    )
    # A section formatted whole reads its keys and its registry entries' (model.adacos...).
    model_keys = {f"model.{name}" for name in ModelParams.__dataclass_fields__} | {
        "model.adacos.min_scale",
        "model.arcface.scale",
        "model.arcface.margin",
    }
    resize_keys = {"resize.size", "resize.framing"} | {
        f"resize.{entry}.{key}"
        for entry, keys in (("object_axis", "contrast flat"), ("object_band", "contrast flat band"))
        for key in keys.split()
    }
    assert _reads_of(tmp_path, library, script) == {
        "train.warmup_epochs",
        "tsne.seed",  # a registered entry runs by its name in params.yaml
        *resize_keys,  # asdict in the forward the class's call reaches
        *model_keys,  # a section formatted whole
    }


def test_an_undeclared_import_or_param_is_named():
    stages = {
        "embed": {
            "deps": [
                "stages/embed.py",
                "src/metricad/model/inference.py",
                "src/metricad/analysis/tsne.py",
            ],
            "params": ["model", "train.seed"],
        }
    }
    closures = {
        "embed": {
            "stages/embed.py",
            "src/metricad/model/inference.py",
            "src/metricad/data/batches.py",
        }
    }
    reads = {"embed": {"model.head", "train.seed", "epochs"}}
    assert dag_problems(stages, closures, reads) == [
        "stage embed runs src/metricad/data/batches.py, which its deps do not list",
        "stage embed lists src/metricad/analysis/tsne.py in its deps but does not run it",
        "stage embed reads param epochs, which its params do not list",
    ]
    reads["embed"] = {"model.head"}
    assert dag_problems(stages, closures, reads)[-1] == (
        "stage embed lists param train.seed but reads none of it"
    )


def test_import_closure_follows_imports_through_the_library(tmp_path):
    library = tmp_path / "src" / LIBRARY
    library.mkdir(parents=True)
    (library / "__init__.py").write_text("")
    (library / "a.py").write_text("from metricad import b\n")
    (library / "b.py").write_text("import metricad.c as c\nimport numpy\n")
    (library / "c.py").write_text("")
    (library / "unused.py").write_text("")
    script = tmp_path / "stage.py"
    script.write_text("import metricad.a  # noqa\n")
    assert import_closure(script, tmp_path / "src") == {
        library / n for n in ("a.py", "b.py", "c.py")
    }


def _entries(items: list | None) -> list[str]:
    """Paths of a dvc.yaml deps / outs / metrics list (an entry may carry options)."""
    return [next(iter(item)) if isinstance(item, dict) else item for item in items or []]


def paths_used(script: Path) -> dict[str, Path]:
    """The metricad.paths constants a stage script imports, with their values."""
    import metricad.paths as paths

    names = {
        alias.name
        for node in ast.walk(ast.parse(script.read_text(), str(script)))
        if isinstance(node, ast.ImportFrom) and node.module == "metricad.paths"
        for alias in node.names
    }
    return {name: Path(getattr(paths, name)) for name in names}


def data_problems(stages: dict, used: dict[str, dict[str, Path]]) -> list[str]:
    """What dvc.yaml's data and model deps and outs get wrong, one line each: a place a stage
    uses (a paths.py constant) that no dep or out is, contains or lies in, and a declared dep
    or out that no place the stage uses touches."""
    problems = []
    for name, stage in stages.items():
        deps = _entries(stage.get("deps"))
        data = [d for d in deps if not d.endswith(".py") and not d.startswith("src/")]
        outs = [*_entries(stage.get("outs")), *_entries(stage.get("metrics"))]
        declared = [Path(p) for p in data + outs]

        def related(a: Path, b: Path) -> bool:
            return a == b or b in a.parents or a in b.parents

        for constant, place in sorted(used[name].items()):
            if not any(related(place, d) for d in declared):
                problems.append(
                    f"stage {name} uses {constant} ({place}), which its deps and outs do not "
                    "declare"
                )
        for path in declared:
            if not any(related(place, path) for place in used[name].values()):
                problems.append(f"stage {name} declares {path} but uses no place in or above it")
    return problems


def test_dvc_yaml_declares_the_data_each_stage_reads_and_writes():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    used = {name: paths_used(REPO / stage["cmd"].split()[-1]) for name, stage in stages.items()}
    assert all(used.values())
    assert data_problems(stages, used) == []


def test_an_undeclared_or_unused_data_path_is_named():
    stages = {"score": {"deps": ["stages/score.py", "data/embeddings"], "outs": ["models/x.npz"]}}
    used = {"score": {"EMBEDDINGS": Path("data/embeddings/embeddings.npy")}}
    assert data_problems(stages, used) == [
        "stage score declares models/x.npz but uses no place in or above it"
    ]
    used["score"]["SCORER"] = Path("models/scorer.npz")
    assert data_problems(stages, used)[0] == (
        "stage score uses SCORER (models/scorer.npz), which its deps and outs do not declare"
    )


def test_the_resume_fingerprint_covers_the_code_training_runs():
    """resume.TRAINING_CODE (the modules hashed into a training state's fingerprint) is the
    training loop's import closure, less the modules that never touch a number: a module
    newly imported by training must be classified here, or a state saved by other code could
    be continued."""
    from metricad.model.resume import training_code_files

    library = REPO / "src" / LIBRARY
    hashed = {path.relative_to(library).as_posix() for path in training_code_files()}
    training = library / "model" / "training.py"
    closure = {f.relative_to(library).as_posix() for f in import_closure(training, REPO / "src")}
    never_numeric = {
        "errors.py",
        "files.py",
        "data/images.py",
        "params.py",
        "paths.py",
        "registry.py",
        "validation.py",
    }
    # A package's __init__ that holds only its docstring computes nothing.
    docstring_only = {
        name
        for name in closure
        if name.endswith("__init__.py")
        and all(
            isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
            for s in ast.parse((library / name).read_text()).body
        )
    }
    assert hashed == ({"model/training.py"} | closure) - never_numeric - docstring_only


def test_every_stage_script_imports():
    """An import that names no module fails here, not an hour into `dvc repro`."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in stages.values():
        runpy.run_path(str(REPO / stage["cmd"].split()[-1]), run_name="imported")


def test_dvc_metrics_show_of_the_committed_run_fits_a_terminal():
    """The declared metrics are the headline files: a row per score and heat map, within
    120 columns; the detailed files stay plain outputs."""
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "show"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = shown.splitlines()
    assert lines[0].split()[0] == "Path" and len(lines) >= 4, shown
    assert max(len(line.rstrip()) for line in lines) <= 120, shown
    headline = ("metrics/scores/", "metrics/maps/")
    assert all(line.split()[0].startswith(headline) for line in lines[1:]), shown


def _stale_after(stages: dict, param: str) -> set[str]:
    """The stages a change of `param` reruns: those that list it (or its section), then every
    stage that depends on one of their outputs, transitively."""
    section = param.split(".")[0]
    stale = {
        name
        for name, stage in stages.items()
        if {param, section} & {p for p in stage.get("params", []) if isinstance(p, str)}
    }
    while True:
        outs = {
            Path(out)
            for name in stale
            for key in ("outs", "metrics")
            for out in _entries(stages[name].get(key))
        }
        following = {
            name
            for name, stage in stages.items()
            if any(
                Path(dep) == out or out in Path(dep).parents or Path(dep) in out.parents
                for dep in _entries(stage.get("deps"))
                for out in outs
            )
        }
        if following <= stale:
            return stale
        stale |= following


def test_a_change_of_views_reruns_what_embeds_and_follows_never_gradcam():
    """embed.views has one owner (embed) and travels downstream (scorer.npz for predict):
    the heat maps do not depend on it."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert _stale_after(stages, "embed.views") == {"embed", "score", "tsne", "evaluate"}
    assert "gradcam" in _stale_after(stages, "gradcam.method")
