"""scripts/survey.py: every setting is a valid params.yaml, and a cell is what it names."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from metricad.files import read_json
from metricad.params import MOVED, params_from_dict
from metricad.validation import set_dotted

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """scripts/<name>.py as a module (scripts/ is not a package; its shared modules are
    imported as `python scripts/<name>.py` finds them, from the script's folder)."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.append(str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


survey, survey_doc = _script("survey"), _script("survey_doc")
WHAT = ("setting", "seed", "epochs")  # a cell's name, as cell_params takes it


@pytest.mark.parametrize("setting", list(survey.SETTINGS))
def test_each_setting_is_valid_params_with_the_cells_seed_and_epochs(setting):
    base = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = params_from_dict(survey.cell_params(base, setting, seed=7, epochs=500))
    assert (params.train.seed, params.epochs) == (7, 500)
    for key, value in survey.SETTINGS[setting].items():
        found = params
        for part in key.split("."):
            found = getattr(found, part)
        assert found == value, key
    assert base["epochs"] != 500  # the committed params are left as they were


def test_article_recipe_is_the_articles_and_good_only_trains_on_good_images():
    base = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    article = params_from_dict(survey.cell_params(base, "article-recipe", 0, 300)).train
    assert (article.lr_schedule, article.warmup_epochs, article.ema_decay) == ("constant", 0, 0)
    good = params_from_dict(survey.cell_params(base, "good-only", 0, 300))
    assert good.split.anomalous_train_fraction == 0
    assert good.train.synthetic_anomalies != "none"


def test_cells_start_from_the_committed_params_not_a_stopped_cells(tmp_path, monkeypatch):
    """A survey killed mid-cell leaves params.yaml with that cell's overrides; the next sitting
    must not take them as its base (good-only's split would leak into the next setting)."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    committed = (ROOT / "params.yaml").read_text(encoding="utf-8")
    (tmp_path / "params.yaml").write_text(committed, encoding="utf-8")
    subprocess.run([*git, "add", "params.yaml"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "params"], cwd=tmp_path, check=True)
    base = yaml.safe_load(committed)
    left = survey.cell_params(base, "good-only", seed=1, epochs=1000)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(left), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    params, text = survey.committed_params()
    assert params == base and text.decode("utf-8") == committed
    cell = params_from_dict(survey.cell_params(params, "article-recipe", seed=3, epochs=300))
    assert cell.split.anomalous_train_fraction == base["split"]["anomalous_train_fraction"]


def test_every_committed_cell_ran_its_settings_on_its_commits_params():
    """Each cell file in surveys/ holds the params it ran with: they are its commit's
    params.yaml with exactly its setting's overrides, seed and epoch count."""
    cells = sorted(p for p in (ROOT / "surveys").rglob("*.json") if ".states" not in p.parts)
    assert cells
    bases: dict[str, dict] = {}
    for path in cells:
        cell = read_json(path)
        if cell["commit"] not in bases:
            shown = subprocess.run(
                ["git", "show", f"{cell['commit']}:params.yaml"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            bases[cell["commit"]] = yaml.safe_load(shown.stdout)
        ran = cell["overrides"]
        expected = json.loads(json.dumps(bases[cell["commit"]]))
        for key, value in {**ran, "train.seed": cell["seed"], "epochs": cell["epochs"]}.items():
            set_dotted(expected, key, value)
        assert cell["params"] == expected, path
        # What it ran is its setting today, under today's names (params.MOVED: keys renamed
        # since), beside the data it ran on.
        today = {MOVED.get(key, key): value for key, value in ran.items()}
        data = {k: v for k, v in ran.items() if k.startswith("data.")}
        assert today == {**survey.SETTINGS[cell["setting"]], **data}, path
        assert path.name == f"seed{cell['seed']}-{cell['epochs']}ep.json"
        assert path.parent.name == cell["setting"]


def test_results_doc_shows_the_committed_cells():
    """docs/results.md's survey tables are what the committed cells give, line for line: the
    seed-spread rows, the epoch summary and every per-seed table it quotes, as
    `compare --survey surveys/epochs` renders them, the demo's summary and seed-spread rows
    from surveys/demo/, and the real-image table from surveys/real/. A cell committed without
    the doc, or a figure typed by hand, fails (`python scripts/survey_doc.py` rewrites them)."""
    doc = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    assert doc.count("\n#### setting=") >= 3, "docs/results.md quotes no per-seed tables"
    surveys = ROOT / "surveys"
    assert survey_doc.refreshed(doc, surveys / "epochs", surveys / "real", surveys / "demo") == doc


def test_the_readmes_real_photo_command_is_the_real_setting():
    """README's "Your own photos" writes the `real` recipe out: the same overrides (besides
    data.*), at the epoch count its figures come from."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("use the real-photo recipe", 1)[1].split("```bash", 1)[1]
    command = block.split("```", 1)[0].replace("\\\n", " ")
    pairs = [word.strip("'").split("=", 1) for word in command.split() if "=" in word]
    overrides = {key: yaml.safe_load(value) for key, value in pairs}
    assert overrides.pop("epochs") == 150
    assert overrides.pop("data.source") == "folder"
    overrides.pop("data.root")
    assert overrides == survey.SETTINGS["real"]


def test_the_readmes_real_photo_figures_are_the_real_cells():
    """README's "Real photos" quotes the `real` recipe over seeds 0-2 as docs/results.md's
    real-image table renders it from the cells: each category's verdict, bottle's patch map
    (pixel AUROC / AUPRO) and bottle's verdict with the article protocol (`real-article`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = " ".join(readme.split("**Real photos**", 1)[1].split("\n\n", 1)[0].split())
    quoted = 0
    for row in survey_doc.real_rows(ROOT / "surveys" / "real")[2:]:
        category, setting, _, seeds, *figures = (cell.strip() for cell in row.split("|")[1:-1])
        if (category, setting) == ("bottle", "real-article"):
            assert seeds == "0-2", f"the `real-article` cells are of seeds {seeds}"
            assert f"article protocol, bottle {figures[5].split(' (')[0]}" in paragraph
            quoted += 1
        if setting != "real":
            continue
        assert seeds == "0-2", f"{category}: the `real` cells are of seeds {seeds}"
        assert f"{category} {figures[5].split(' (')[0]}" in paragraph, category
        if category == "bottle":
            _, pixel_auroc, aupro = figures[8].split(" / ")
            assert f"patch map {pixel_auroc} / {aupro}" in paragraph
        quoted += 1
    assert quoted == 3, "README quotes `real` on bottle and screw, `real-article` on bottle"


def test_the_readmes_seed_figure_is_the_demos_cells():
    """README's "One run is a draw" quotes the committed demo (`article`, at the committed epoch
    count) over seeds 0-9 as docs/results.md's demo seed-spread row renders it from the cells:
    the Gaussian AUROC's mean ± sd and its minimum."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = " ".join(readme.split("**One run is a draw", 1)[1].split("\n\n", 1)[0].split())
    epochs = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["epochs"]
    row = survey_doc.spread_row(ROOT / "surveys" / "demo", "article", epochs, "0-9")
    gaussian, minimum = (cell.strip() for cell in row.split("|")[4:6])
    assert "Over seeds 0-9 the article protocol" in paragraph
    assert f"test Gaussian AUROC of **{gaussian}**, every seed at {minimum[:5]}" in paragraph
