"""`batchlens notebooks DIR`: the notebooks the package carries, copied out to work in.

An installed wheel holds them as package data (read with importlib.resources), but a
user's Jupyter should open copies in a folder of theirs, where edits and outputs belong
to them. A copy never overwrites a file that differs from the packaged one without
`--force`: it may hold the user's work.

The docs pages go along into `DIR/docs/`, because the notebooks link to them
(`docs/metrics.md`) and the copies must stay byte for byte the packaged notebooks. In a
checkout the same links resolve through `notebooks/docs`, a symlink to `../docs`.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from batchlens.errors import UsageError
from batchlens.output import write_atomically

DOCS = PurePosixPath("docs")  # where the copies' links expect the pages, beside the notebooks
DOC_SUFFIXES = (".md", ".sql")  # the pages and the example queries they link to


def packaged() -> dict[str, bytes]:
    """File name -> content of every notebook in the package."""
    folder = resources.files("batchlens.notebooks")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.name.endswith(".ipynb")
    }


def packaged_docs() -> dict[str, bytes]:
    """Relative path (`docs/metrics.md`, `docs/examples/x.sql`) -> content of every doc file."""
    return dict(_doc_files(resources.files("batchlens.docs"), DOCS))


def _doc_files(folder: Traversable, under: PurePosixPath) -> list[tuple[str, bytes]]:
    found = []
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            found += _doc_files(entry, under / entry.name)
        elif entry.name.endswith(DOC_SUFFIXES):
            found.append((str(under / entry.name), entry.read_bytes()))
    return found


def export(folder: Path, force: bool = False) -> list[tuple[Path, str]]:
    """Copies every notebook into `folder`, the docs into `folder/docs`; returns (path, what
    happened) for each file.

    Checks every file before writing any, so a refusal leaves the folder as it was.
    """
    notebooks = packaged()
    if not notebooks:
        raise UsageError("this installation of batchlens carries no notebooks")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"not a folder: {folder}")
    files = {**dict(sorted(notebooks.items())), **dict(sorted(packaged_docs().items()))}
    targets = {folder / name: content for name, content in files.items()}
    for parent in {path.parent for path in targets}:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"not a folder: {parent}; nothing was copied")
    writes = [path for path, content in targets.items() if not _same(path, content)]
    # what is there already and would be replaced; a link counts whatever it points to
    different = [path for path in writes if path.is_symlink() or path.exists()]
    linked = sorted({str(p) for path in writes for p in _linked_folders(folder, path)})
    if linked:
        # a write below a linked folder would land wherever the link points
        raise UsageError(f"{', '.join(linked)} is a link; nothing was copied")
    if different and not force:
        names = ", ".join(str(path.relative_to(folder)) for path in different)
        raise UsageError(
            f"{folder} already has different {names}; nothing was copied (--force overwrites them)"
        )
    done = []
    for path, content in targets.items():
        if path not in writes:
            done.append((path, "unchanged"))
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder {path.parent}: {exc.strerror}") from None
        try:
            # beside it, then renamed over it: a link at `path` is replaced, never written
            # through (it may point outside the folder), as --output and --html do
            write_atomically(path, content, "notebook")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        done.append((path, "overwritten" if path in different else "written"))
    return done


def _same(path: Path, content: bytes) -> bool:
    """Already there as a file of its own with this content: nothing to write."""
    return not path.is_symlink() and path.is_file() and path.read_bytes() == content


def _linked_folders(folder: Path, path: Path) -> list[Path]:
    """The folders between `folder` and `path` that are links (`folder` itself is the user's)."""
    relative = path.parent.relative_to(folder)
    found, current = [], folder
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            found.append(current)
    return found
