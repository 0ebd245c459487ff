"""The docs hold together: the CLI reference is the parser's, every link leads somewhere,
and the README stays the ten-minute tour it is meant to be."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_links import broken_links, notebook_markdown, relative_links, same_page_anchors_missing

from batchlens.cli import build_parser
from batchlens.cli_reference import REGENERATE, render
from batchlens.notebooks.export import export

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 260
PAGES = sorted(DOCS.glob("*.md"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_cli_reference_is_the_parsers() -> None:
    written = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert written == render(build_parser()), (
        f"docs/cli.md is out of date with batchlens/cli.py: run `{REGENERATE}` "
        "(python -m batchlens.cli_reference --write) and commit docs/cli.md"
    )


def test_the_cli_reference_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = set()
    for columns in ("20", "80", "300"):
        monkeypatch.setenv("COLUMNS", columns)
        pages.add(render(build_parser()))
    assert len(pages) == 1


def test_the_cli_reference_has_every_command_and_option() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    for name, command in commands.choices.items():
        assert f"## `batchlens {name}`" in page
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in page, (name, option)


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: path.relative_to(ROOT).name)
def test_every_relative_link_leads_somewhere(path: Path) -> None:
    assert broken_links(path) == [], f"{path.relative_to(ROOT)}: links that lead nowhere"
    assert same_page_anchors_missing(path) == [], f"{path.relative_to(ROOT)}: no such heading"


@pytest.mark.parametrize("path", PAGES, ids=lambda path: path.name)
def test_a_page_links_only_to_docs(path: Path) -> None:
    """`batchlens notebooks DIR` copies docs/ alone into DIR/docs: a link out of docs/ (to
    the README, to the code) would lead nowhere there. Name such files in `code` instead."""
    outside = [
        target
        for target in relative_links(path.read_text(encoding="utf-8"))
        if not (path.parent / target.partition("#")[0]).resolve().is_relative_to(DOCS)
    ]
    assert outside == [], f"{path.name} links out of docs/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_the_notebooks_links_lead_to_the_docs_in_a_checkout(path: Path) -> None:
    """Through notebooks/docs, the symlink to ../docs, as a copy's lead to DIR/docs."""
    links = relative_links(notebook_markdown(path))
    assert any(link.startswith("docs/") for link in links), f"{path.name} links to no page"
    assert broken_links(path) == []


def test_the_readme_is_the_ten_minute_tour() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move a topic to docs/"
    )


def test_the_index_lists_every_page() -> None:
    assert "docs/README.md" in relative_links(README.read_text(encoding="utf-8"))
    listed = set(relative_links((DOCS / "README.md").read_text(encoding="utf-8")))
    assert {page.name for page in PAGES} - {"README.md"} <= listed


def test_a_copy_of_the_notebooks_keeps_its_links(tmp_path: Path) -> None:
    """What `batchlens notebooks DIR` writes: the notebooks and docs/ beside them."""
    written = export(tmp_path / "copy")
    copied = [path for path, _ in written]
    assert {path.name for path in copied} >= {p.name for p in NOTEBOOKS} | {p.name for p in PAGES}
    for path in copied:
        if path.suffix in (".ipynb", ".md"):
            assert broken_links(path) == [], path.relative_to(tmp_path)
    for path in NOTEBOOKS:  # byte for byte: nothing in a copy is rewritten
        assert (tmp_path / "copy" / path.name).read_bytes() == path.read_bytes()
    assert {what for _, what in export(tmp_path / "copy")} == {"unchanged"}
