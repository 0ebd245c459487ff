"""`batchlens notebooks DIR`: the notebooks the package carries, copied out to work in.

An installed wheel holds them as package data (read with importlib.resources), but a
user's Jupyter should open copies in a folder of theirs, where edits and outputs belong
to them. A copy never overwrites a file that differs from the packaged one without
`--force`: it may hold the user's work.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from batchlens.errors import UsageError


def packaged() -> dict[str, bytes]:
    """File name -> content of every notebook in the package."""
    folder = resources.files("batchlens.notebooks")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.name.endswith(".ipynb")
    }


def export(folder: Path, force: bool = False) -> list[tuple[Path, str]]:
    """Copies every notebook into `folder`; returns (path, what happened) for each.

    Checks every file before writing any, so a refusal leaves the folder as it was.
    """
    notebooks = packaged()
    if not notebooks:
        raise UsageError("this installation of batchlens carries no notebooks")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"not a folder: {folder}")
    targets = {folder / name: content for name, content in sorted(notebooks.items())}
    different = [path for path, content in targets.items() if _differs(path, content)]
    if different and not force:
        names = ", ".join(path.name for path in different)
        raise UsageError(
            f"{folder} already has different {names}; nothing was copied (--force overwrites them)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {folder}: {exc.strerror}") from None
    done = []
    for path, content in targets.items():
        if path.is_file() and path.read_bytes() == content:
            done.append((path, "unchanged"))
            continue
        try:
            path.write_bytes(content)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        done.append((path, "overwritten" if path in different else "written"))
    return done


def _differs(path: Path, content: bytes) -> bool:
    return path.exists() and (not path.is_file() or path.read_bytes() != content)
