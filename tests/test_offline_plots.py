"""`dvc plots show` / `dvc plots diff` write a page that needs no network.

.dvc/config sets plots.html_template to plots_template/offline.html, which carries vega,
vega-lite and vega-embed inline; dvc-render's default page loads them from a CDN instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "plots_template" / "offline.html"
# What each inlined UMD build defines on the page (`window.vega`, ...) and its version.
LIBRARIES = {
    "vega": (".vega={}", 't.version="5.33.1"'),
    "vega-lite": (".vegaLite={}", 'var n="5.23.0"'),
    "vega-embed": (".vegaEmbed=t(e.vega,e.vegaLite)", 'fn="6.29.0"'),
}
# Top-level plots of dvc.yaml that are drawn with vega (images are <img> tags instead).
CHARTS = ("loss", "accuracy", "roc", "confusion")


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


def _dvc(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=REPO,
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
