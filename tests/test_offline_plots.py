"""`dvc plots show` / `dvc plots diff` write a page that needs no network.

.dvc/config sets plots.html_template to plots_template/offline.html, which carries vega,
vega-lite and vega-embed inline; dvc-render's default page loads them from a CDN instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "plots_template" / "offline.html"
# The t-SNE charts' template: colour = the image's label, shape = the revision. dvc.yaml names it
# by name, so DVC finds .dvc/plots/tsne_scatter.json from any folder of the repository.
TSNE_TEMPLATE = "tsne_scatter"
TSNE_TEMPLATE_FILE = REPO / ".dvc" / "plots" / f"{TSNE_TEMPLATE}.json"
TSNE_CHARTS = ("tsne_train", "tsne_test", "tsne_all")
# What each inlined UMD build defines on the page (`window.vega`, ...) and its version.
LIBRARIES = {
    "vega": (".vega={}", 't.version="5.33.1"'),
    "vega-lite": (".vegaLite={}", 'var n="5.23.0"'),
    "vega-embed": (".vegaEmbed=t(e.vega,e.vegaLite)", 'fn="6.29.0"'),
}
# Top-level plots of dvc.yaml that are drawn with vega (images are <img> tags instead).
CHARTS = ("loss", "accuracy", "head_scale", "roc", "confusion", *TSNE_CHARTS)


class _Page(HTMLParser):
    """Start tags with their attributes, and the text of each <script> (in order)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _dvc(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _is_off_page(url: str) -> bool:
    url = url.strip().lower()
    return url.startswith("//") or (":" in url.split("/")[0] and not url.startswith("data:"))


def _check_offline_page(index: Path) -> str:
    html = index.read_text(encoding="utf8")
    page = _parse(html)

    # No external script at all, and nothing else loaded from off the page.
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts, "no <script> in the page"
    assert all("src" not in attrs for attrs in scripts), [a for a in scripts if "src" in a]
    assert "<script src=" not in html
    for tag, attrs in page.tags:
        for name in ("src", "href") if tag == "link" else ("src",):
            value = attrs.get(name)
            assert value is None or not _is_off_page(value), f"<{tag} {name}={value!r}>"

    # The libraries are inline, in the page's first scripts, before any chart calls vegaEmbed.
    for name, markers in LIBRARIES.items():
        assert any(all(m in text for m in markers) for text in page.scripts[:3]), name
    assert not any("vegaEmbed(" in text for text in page.scripts[:3])
    # At least one chart div (one per top-level plot here), each drawn by vegaEmbed.
    divs = {attrs.get("id") for tag, attrs in page.tags if tag == "div"}
    for chart in CHARTS:
        assert chart in divs, f"no chart div {chart!r}"
        assert any(f"vegaEmbed('#{chart}'" in text for text in page.scripts[3:]), chart
    return html


def test_config_points_at_the_offline_template():
    configured = _dvc("config", "plots.html_template").stdout.strip()
    # DVC resolves a relative plots.html_template against the .dvc folder.
    assert (REPO / ".dvc" / configured).resolve() == TEMPLATE.resolve()
    text = TEMPLATE.read_text(encoding="utf8")
    # dvc-render fills these by plain text replacement, anywhere in the file (comments too).
    assert text.count("{plot_divs}") == 1
    assert text.count("{refresh_tag}") == 1
    assert "{scripts}" not in text, "dvc-render would put its CDN <script src> tags there"


def test_plots_show_writes_a_page_that_needs_no_network(tmp_path):
    out = tmp_path / "out"
    _dvc("plots", "show", "-o", str(out))
    _check_offline_page(out / "index.html")


def test_plots_diff_writes_a_page_that_needs_no_network(tmp_path):
    out = tmp_path / "out"
    _dvc("plots", "diff", "HEAD", "-o", str(out))
    html = _check_offline_page(out / "index.html")
    assert '"rev": "HEAD"' in html and '"rev": "workspace"' in html


def _named_charts() -> dict[str, dict]:
    """dvc.yaml's named charts (the top-level plots with an id) and their definitions."""
    entries = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    return {
        name: props for entry in entries if isinstance(entry, dict) for name, props in entry.items()
    }


def test_plots_show_draws_each_figure_once(tmp_path):
    """On the committed plots/ and dvclive/ files: no table that a named chart draws is drawn
    again on its own, every chart has data, each image is shown once (the per-image GradCAM
    panels not at all), and the t-SNE maps colour the points by label, the revisions by shape."""
    shown = json.loads(_dvc("plots", "show", "--json", "-o", str(tmp_path / "json")).stdout)
    assert "errors" not in shown, shown["errors"]
    data = shown["data"]
    named = _named_charts()
    assert set(CHARTS) <= set(named)

    used = {file for props in named.values() for file in props["y"]}
    assert not used & set(data), f"drawn twice: {sorted(used & set(data))}"
    assert all(data.values()), [name for name, entries in data.items() if not entries]
    charts = {name for name, entries in data.items() if entries[0]["type"] == "vega"}
    assert charts == set(named), "the charts are dvc.yaml's named ones, no file's own chart"

    images = [name for name, entries in data.items() if entries[0]["type"] == "image"]
    urls = Counter(entry["url"] for name in images for entry in data[name])
    assert images and max(urls.values()) == 1 and len(urls) == len(images)
    assert not [name for name in images if name.startswith("plots/gradcam/images/")]
    assert {"plots/gradcam/targets.png", "plots/gradcam/synthetic.png"} <= set(images)
    assert any(name.startswith("plots/gradcam/kinds/") for name in images)

    for name in TSNE_CHARTS:
        assert named[name]["template"] == TSNE_TEMPLATE
        spec = data[name][0]["content"]
        color, shape = spec["encoding"]["color"], spec["encoding"]["shape"]
        assert shape["field"] == "rev"
        (label,) = [step for step in spec["transform"] if step.get("as") == color["field"]]
        assert "datum['class']" in label["calculate"]
        # Each label has its own colour, and every label in the table is one of them.
        assert len(set(color["scale"]["range"])) == len(color["scale"]["domain"])
        classes = {row["class"] for row in spec["data"]["values"]}
        assert classes <= set(color["scale"]["domain"]), classes
    rows = data["tsne_all"][0]["content"]["data"]["values"]
    assert {row["class"] for row in rows} == {"good", "anomalous"}

    # The page: each image once.
    out = tmp_path / "html"
    _dvc("plots", "show", "-o", str(out))
    page = _parse((out / "index.html").read_text(encoding="utf8"))
    sources = Counter(attrs.get("src") for tag, attrs in page.tags if tag == "img")
    assert max(sources.values()) == 1, [src for src, n in sources.items() if n > 1]
    assert len(sources) == len(images)


def test_tsne_template_is_found_by_name_and_committed():
    """The t-SNE template sits in DVC's custom-template folder, and git does not ignore it
    (.dvc/.gitignore ignores some of .dvc/), so a clone draws the same charts."""
    assert TSNE_TEMPLATE_FILE.is_file()
    assert "<DVC_METRIC_DATA>" in TSNE_TEMPLATE_FILE.read_text(encoding="utf8")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(TSNE_TEMPLATE_FILE)], cwd=REPO, check=False
    )
    assert ignored.returncode == 1, "git ignores .dvc/plots/tsne_scatter.json"


def test_plots_show_from_a_subfolder(tmp_path):
    """From a subfolder (docs/) DVC still finds the t-SNE template, and every chart is drawn."""
    shown = _dvc("plots", "show", "--json", "-o", str(tmp_path), cwd=REPO / "docs").stdout
    shown = json.loads(shown)
    assert "errors" not in shown, shown["errors"]
    data = shown["data"]
    for name in CHARTS:
        assert data[name] and data[name][0]["type"] == "vega", name
    for name in TSNE_CHARTS:
        assert data[name][0]["content"]["encoding"]["shape"]["field"] == "rev", name
