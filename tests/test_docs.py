"""The docs stay true: README.md stays a short guide, every relative link in README.md and
docs/*.md reaches a file (and a heading, for `#anchor` links), and every figure the docs quote
from a committed metrics file (metrics/*.json) is that file's value, rounded as quoted.

Fast (reads text and JSON only, no training). When `dvc repro` changes a committed metric,
the figure test names the doc, the phrase and the new value to write there.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 250

README_MD, RESULTS = "README.md", "docs/results.md"
EVALUATE, GRADCAM, TSNE = "evaluate.json", "gradcam.json", "tsne.json"
DATA, TRAIN = "data.json", "train.json"

# Every figure a doc quotes from a committed metrics file, one row each:
# (doc, the phrase with {} where the figure stands, file under metrics/, key path, format spec).
# Phrases are matched with whitespace collapsed (a line break counts as a space), and every place
# a phrase occurs in its doc must carry the file's value, so a quote cannot drift in one place
# and stay right in another.
QUOTED = [
    # README.md, "Results": the headline of the committed demo run.
    (README_MD, "on the test split ({} good,", DATA, "images.test.good", "d"),
    (README_MD, "good, {} defects) | committed run", EVALUATE, "test.n_anomalous", "d"),
    (README_MD, "image AUROC | softmax {},", EVALUATE, "scores.softmax.auroc", ".2f"),
    (README_MD, "kNN {}, Gaussian", EVALUATE, "scores.knn.auroc", ".2f"),
    (README_MD, "Gaussian {} |", EVALUATE, "scores.gaussian.auroc", ".2f"),
    (README_MD, "0.5 cut | {} of", EVALUATE, "test.errors", "d"),
    (README_MD, "pointing game {}, pixel AUROC", GRADCAM, "test.pointing_game", ".2f"),
    (README_MD, "pixel AUROC {}, AUPRO", GRADCAM, "test.pixel_auroc", ".3f"),
    (README_MD, "AUPRO {} |", GRADCAM, "test.aupro", ".3f"),
    # docs/results.md, "The committed run": every figure of the committed demo run.
    (RESULTS, "test image AUROC | softmax {},", EVALUATE, "scores.softmax.auroc", ".2f"),
    (RESULTS, "kNN {}, Gaussian", EVALUATE, "scores.knn.auroc", ".2f"),
    (RESULTS, "Gaussian {} |", EVALUATE, "scores.gaussian.auroc", ".2f"),
    (RESULTS, "0.5 cut | {} of", EVALUATE, "test.errors", "d"),
    (RESULTS, "(all {} good images right", DATA, "images.test.good", "d"),
    (RESULTS, "quantile of the {} good validation", DATA, "images.validation.good", "d"),
    (RESULTS, "FPR on the {} good test images", DATA, "images.test.good", "d"),
    (RESULTS, "recall on the {} test defects", EVALUATE, "test.n_anomalous", "d"),
    (RESULTS, "softmax FPR {},", EVALUATE, "operating_points.softmax.false_positive_rate", ".1f"),
    (RESULTS, "recall {}; kNN FPR", EVALUATE, "operating_points.softmax.recall", ".2f"),
    (RESULTS, "kNN FPR {},", EVALUATE, "operating_points.knn.false_positive_rate", ".1f"),
    (RESULTS, "recall {}; Gaussian FPR", EVALUATE, "operating_points.knn.recall", ".2f"),
    (RESULTS, "Gaussian FPR {},", EVALUATE, "operating_points.gaussian.false_positive_rate", ".1f"),
    (RESULTS, "recall {} |", EVALUATE, "operating_points.gaussian.recall", ".2f"),
    (RESULTS, "pointing game {}, pixel AUROC", GRADCAM, "test.pointing_game", ".2f"),
    (RESULTS, "pixel AUROC {}, AUPRO", GRADCAM, "test.pixel_auroc", ".3f"),
    (RESULTS, "AUPRO {} |", GRADCAM, "test.aupro", ".3f"),
    (RESULTS, "kinds | correct {},", GRADCAM, "test.kinds.correct", "d"),
    (RESULTS, "inverted {}, near miss", GRADCAM, "test.kinds.inverted", "d"),
    (RESULTS, "near miss {}, none", GRADCAM, "test.kinds.near_miss", "d"),
    (RESULTS, "none {} |", GRADCAM, "test.kinds.no_response", "d"),
    (RESULTS, "(good vs defect) | {} |", TSNE, "silhouette.test.embedding", ".2f"),
    (RESULTS, "because {} of those", TRAIN, "n_train", "d"),
    (RESULTS, "of those {} images were trained on", EVALUATE, "train_and_test.n_images", "d"),
    # docs/results.md, "The demo at 64 px over seeds": seed 0 of the survey is the committed run.
    (RESULTS, "the committed run: Gaussian AUROC {},", EVALUATE, "scores.gaussian.auroc", ".3f"),
    (RESULTS, "softmax AUROC {} and", EVALUATE, "scores.softmax.auroc", ".3f"),
    (RESULTS, "and {} softmax errors at the 0.5 cut", EVALUATE, "test.errors", "d"),
]

NUMBER = r"(-?\d+(?:\.\d+)?)"
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", flags=re.M | re.S)
INLINE_CODE = re.compile(r"`[^`]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", flags=re.M)


def _text(doc: str) -> str:
    return (ROOT / doc).read_text(encoding="utf-8")


def _prose(text: str) -> str:
    """The text without code: fenced blocks and inline code spans (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text lowercased, every character but letters, digits,
    spaces, '-' and '_' removed, each space turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return frozenset(found)


def relative_links(path: Path) -> list[str]:
    """The relative link targets of a Markdown file (images included), outside code."""
    targets = LINK.findall(_prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:|^//", t, flags=re.I)]


def link_problem(source: Path, target: str) -> str | None:
    """Why a relative link from `source` is broken, or None."""
    file_part, _, anchor = target.partition("#")
    linked = (source.parent / file_part).resolve() if file_part else source
    if not linked.exists():
        return f"{target}: no such file ({linked})"
    if anchor and linked.suffix == ".md" and anchor not in anchors(linked):
        return f"{target}: {linked.name} has no heading with the anchor #{anchor}"
    return None


def metric(file: str, key_path: str):
    value = json.loads((ROOT / "metrics" / file).read_text(encoding="utf-8"))
    for key in key_path.split("."):
        value = value[key]
    return value


def test_the_readme_is_at_most_250_lines():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/ and "
        "link it"
    )


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_its_file_and_heading(doc):
    links = relative_links(doc)
    problems = [problem for target in links if (problem := link_problem(doc, target))]
    assert not problems, f"{doc.relative_to(ROOT)}: broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("doc", "phrase", "file", "key_path", "spec"),
    QUOTED,
    ids=[f"{doc}:{file}:{key}" for doc, _, file, key, _ in QUOTED],
)
def test_a_quoted_figure_is_its_committed_metric(doc, phrase, file, key_path, spec):
    assert phrase.count("{}") == 1, phrase
    expected = format(metric(file, key_path), spec)
    text = " ".join(_text(doc).split())
    before, after = phrase.split("{}")
    quoted = re.findall(re.escape(before) + NUMBER + re.escape(after), text)
    assert quoted, (
        f"{doc} no longer quotes metrics/{file}: {key_path} as {phrase!r} (value {expected}); "
        "put the phrase back or change its row in tests/test_docs.py"
    )
    assert set(quoted) == {expected}, (
        f"{doc} quotes {', '.join(repr(phrase.format(q)) for q in quoted)}, but "
        f"metrics/{file}: {key_path} is {metric(file, key_path)}, quoted as {expected}"
    )


def test_the_github_anchor_rule():
    """The rule the link test holds anchors to, on headings of these docs."""
    assert github_anchor("300 / 500 / 1000 epochs over seeds (the article's question)") == (
        "300--500--1000-epochs-over-seeds-the-articles-question"
    )
    assert github_anchor("`folder`: a folder of your photos") == "folder-a-folder-of-your-photos"
    assert github_anchor("Good only: the recipe_screens") == "good-only-the-recipe_screens"
    assert github_anchor("See [grid.md](grid.md) now") == "see-gridmd-now"
