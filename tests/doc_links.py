"""Relative links in Markdown and in notebooks' markdown cells, and the ones that lead nowhere.

Shared by the docs tests in a checkout (tests/unit/test_docs.py) and by the wheel test
(tests/test_packaging.py), which follows the links of the copies `batchlens notebooks`
writes. A link resolves when its file exists and, if it names an anchor in a Markdown
file, when that file has a heading with GitHub's anchor for it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def prose(markdown: str) -> str:
    """The text without code blocks and code spans, where `[x](y)` is not a link."""
    return CODE.sub("", FENCE.sub("", markdown))


def relative_links(markdown: str) -> list[str]:
    """Every link target that is neither external nor an anchor of the page itself."""
    return [
        target
        for target in LINK.findall(prose(markdown))
        if not EXTERNAL.match(target) and not target.startswith("#")
    ]


def page_anchors(markdown: str) -> list[str]:
    """The anchors of a page's headings, as GitHub makes them (a repeated one gets -1, -2)."""
    anchors, seen = [], Counter[str]()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
        anchor = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        anchors.append(f"{anchor}-{seen[anchor]}" if seen[anchor] else anchor)
        seen[anchor] += 1
    return anchors


def notebook_markdown(path: Path) -> str:
    """The markdown cells of a notebook, one after the other."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file or a notebook that lead nowhere."""
    text = notebook_markdown(path) if path.suffix == ".ipynb" else path.read_text("utf-8")
    return [target for target in relative_links(text) if not _resolves(path.parent, target)]


def _resolves(folder: Path, target: str) -> bool:
    file_part, _, anchor = unquote(target).partition("#")
    linked = (folder / file_part).resolve()
    if not linked.exists():
        return False
    return not anchor or linked.suffix != ".md" or anchor in page_anchors(linked.read_text())


def same_page_anchors_missing(path: Path) -> list[str]:
    """`[x](#anchor)` links of a Markdown file whose anchor is none of its headings'."""
    text = path.read_text(encoding="utf-8")
    anchors = page_anchors(text)
    return [
        target
        for target in LINK.findall(prose(text))
        if target.startswith("#") and target[1:] not in anchors
    ]
