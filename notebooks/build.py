"""`make notebooks`: runs every notebook against `$BATCHLENS_DB` and writes it as HTML.

The notebooks are committed without outputs (`--clean` strips them); this is where they
get them, into the git-ignored `build/notebooks/`. They run in a kernel of this very Python
(the venv's), from a kernelspec written to a temporary folder, so a `python3` kernelspec
elsewhere on the machine (say in the user's home) cannot swap in another interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from batchlens.errors import FAILED, OK, USAGE, BatchlensError
from batchlens.notebooks.helper import DB_ENV, database_path, open_db

NOTEBOOKS_DIR = Path(__file__).resolve().parent
OUT_DIR = Path("build") / "notebooks"  # in the working folder: `make notebooks` runs at the root
KERNEL = "python3"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": KERNEL}
CELL_TIMEOUT_S = 300


@contextmanager
def kernel_manager() -> Iterator[KernelManager]:
    """A manager of `python3` kernels that are this interpreter, sys.executable.

    Its kernelspec and connection file live in a temporary folder: nothing is installed,
    and no kernelspec elsewhere (say in the user's home) can swap in another Python.
    """
    with tempfile.TemporaryDirectory(prefix="batchlens-kernel-") as folder:
        spec = Path(folder) / KERNEL
        spec.mkdir()
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "Python 3", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel))
        yield KernelManager(
            kernel_name=KERNEL,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[folder]),
            connection_file=str(Path(folder) / "connection.json"),
        )


def execute(path: Path, db: Path) -> nbformat.NotebookNode:
    """The notebook at `path`, run in its own folder against `db`, outputs included."""
    notebook = nbformat.read(path, as_version=4)
    run(notebook, path.parent, db)
    return notebook


def run(
    notebook: nbformat.NotebookNode,
    folder: Path,
    db: Path,
    *,
    allow_errors: bool = False,
    timeout: int = CELL_TIMEOUT_S,
) -> None:
    """Runs `notebook` in place, in `folder`, against `db`, as Jupyter would.

    Raises nbclient's CellExecutionError at the first failing cell unless `allow_errors`;
    the outputs up to that cell are in `notebook` either way.
    """
    # No display here: Agg for anything that plots outside the inline backend, which the
    # notebooks select themselves (`%matplotlib inline`) so that their figures are outputs.
    env = {**os.environ, DB_ENV: str(db), "MPLBACKEND": "Agg"}
    with kernel_manager() as manager:
        client = NotebookClient(
            notebook,
            km=manager,
            kernel_name=KERNEL,
            timeout=timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(folder)}},
        )
        client.execute(env=env)


def to_html(notebook: nbformat.NotebookNode) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


def clean(path: Path) -> bool:
    """Strips what a run adds, the way notebooks are committed; True when the file changed.

    Kept: the cells, their tags (the tests find plotting cells by them) and the kernelspec.
    """
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    notebook.metadata = {"kernelspec": KERNELSPEC}
    for cell in notebook.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    after = nbformat.writes(notebook)
    if after != before:
        nbformat.write(notebook, path)  # as Jupyter writes it, newline at the end
    return after != before


def notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


def build(db: Path, out: Path, paths: Sequence[Path]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        target = out / f"{path.stem}.html"
        target.write_text(to_html(execute(path, db)), encoding="utf-8")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m batchlens.notebooks.build",
        description=f"Run batchlens' notebooks against ${DB_ENV} (default: the nearest "
        "batchlens.duckdb or demo.duckdb in the working folder or above) and write them as HTML.",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"default: {OUT_DIR}")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="instead: strip outputs and metadata from notebooks/*.ipynb, before a commit",
    )
    args = parser.parse_args(argv)
    if args.clean:
        for path in notebooks():
            if clean(path):
                print(f"batchlens notebooks: cleaned {path}")
        return OK
    try:
        db = open_db(database_path()).path  # the same one sentence as in the notebooks
        written = build(db, args.out.absolute(), notebooks())
    except BatchlensError as exc:
        print(f"batchlens: {exc}", file=sys.stderr)
        return USAGE
    except CellExecutionError as exc:
        print(f"batchlens: a notebook failed:\n{exc}", file=sys.stderr)
        return FAILED
    for target in written:
        print(f"batchlens notebooks: wrote {target}")
    return OK


if __name__ == "__main__":
    sys.exit(main())
