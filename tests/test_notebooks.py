"""The notebooks: committed clean, run end to end in a kernel, plot, and fail in one sentence."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import matplotlib
import nbformat
import pandas as pd
import pytest
from nbclient.exceptions import CellExecutionError

matplotlib.use("Agg")  # no display here
import matplotlib.pyplot as plt

from batchlens.config import Account
from batchlens.notebooks import helper as nb
from batchlens.notebooks.build import clean, kernel_manager, main, notebooks, run, to_html
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from helpers import KEY, cli_env, run_cli

NOTEBOOKS = notebooks()
PLOT_TAG = "plot"
CLEAN = "`.venv/bin/python -m batchlens.notebooks_build --clean`"


def plot_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if PLOT_TAG in cell.metadata.get("tags", [])]


def load(db: Path, batches: int) -> Path:
    with Simulator(batches=batches, seed=7, api_key=KEY) as sim:
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=KEY))
    return db


@pytest.fixture(scope="module")
def loaded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load(tmp_path_factory.mktemp("notebooks") / "batches.duckdb", batches=2000)


@pytest.fixture(autouse=True, scope="module")
def kernel_state_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """IPython's profile and Jupyter's runtime files of the test kernels go to tmp, not ~."""
    folder = tmp_path_factory.mktemp("kernel-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(folder / "ipython"))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(folder / "runtime"))
        yield


@pytest.fixture
def db_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv(nb.DB_ENV, raising=False)
    yield monkeypatch


def test_both_notebooks_exist() -> None:
    assert {path.name for path in NOTEBOOKS} >= {"overview.ipynb", "failures.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; run {CLEAN} before committing"
    assert plot_cells(notebook), f"{path.name}: no cell is tagged {PLOT_TAG!r}"
    first, second = notebook.cells[:2]
    assert first.cell_type == "markdown" and nb.DB_ENV in first.source
    assert second.cell_type == "code" and "open_db(" in second.source


def test_the_kernel_is_this_python() -> None:
    with kernel_manager() as manager:
        assert manager.kernel_spec.argv[0] == sys.executable
        assert Path(manager.connection_file).parent != Path.home()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_runs_end_to_end_and_plots(path: Path, loaded_db: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    run(notebook, path.parent, loaded_db)  # raises at the first cell that fails
    for cell in plot_cells(notebook):
        kinds = {kind for output in cell.outputs for kind in output.get("data", {})}
        assert "image/png" in kinds, f"{path.name}: no image from\n{cell.source}"
    assert str(loaded_db) in "".join(output.get("text", "") for output in notebook.cells[1].outputs)
    assert "<img" in to_html(notebook)


def test_missing_database_is_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "missing.duckdb"
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    with pytest.raises(CellExecutionError):
        run(notebook, NOTEBOOKS[0].parent, missing)
    errors = [
        (index, output)
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    assert len(errors) == 1
    index, error = errors[0]
    assert index == 1, "the first code cell, the one that opens the database, fails"
    assert error.ename == "NoDataError"
    assert error.traceback == [error.evalue]  # the sentence, no frames
    assert error.evalue.startswith(f"There is no database at {missing}:")
    assert error.evalue.count(". ") == 0 and error.evalue.endswith(".")


def test_default_is_the_nearest_database_at_or_above_the_working_folder(
    db_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No repo checkout needed: a notebook runs in its own folder, the database is near."""
    here = tmp_path / "project" / "notebooks"
    here.mkdir(parents=True)
    assert nb.database_path(here) == here / "batchlens.duckdb"  # none: reported as missing
    (tmp_path / "project" / "demo.duckdb").touch()
    assert nb.database_path(here) == tmp_path / "project" / "demo.duckdb"
    (tmp_path / "project" / "batchlens.duckdb").touch()
    assert nb.database_path(here) == tmp_path / "project" / "batchlens.duckdb"
    (here / "demo.duckdb").touch()
    assert nb.database_path(here) == here / "demo.duckdb"  # the nearest folder wins
    db_env.setenv(nb.DB_ENV, "elsewhere/mine.duckdb")
    assert nb.database_path(here) == here / "elsewhere" / "mine.duckdb"
    db_env.setenv(nb.DB_ENV, "/data/batches.duckdb")
    assert nb.database_path(here) == Path("/data/batches.duckdb")
    db_env.chdir(here)
    db_env.delenv(nb.DB_ENV)
    assert nb.database_path() == here / "demo.duckdb"


def test_the_notebooks_command_copies_them_out_and_keeps_the_users_edits(tmp_path: Path) -> None:
    folder = tmp_path / "my notebooks"
    result = run_cli("notebooks", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for path in NOTEBOOKS:
        assert (folder / path.name).read_bytes() == path.read_bytes()
        assert f"written {folder / path.name}" in result.stdout
    again = run_cli("notebooks", str(folder), cwd=tmp_path)
    assert again.returncode == 0 and "unchanged" in again.stdout
    edited = folder / NOTEBOOKS[0].name
    edited.write_text("my own work")
    refused = run_cli("notebooks", str(folder), cwd=tmp_path)
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert NOTEBOOKS[0].name in line and "--force" in line
    assert edited.read_text() == "my own work"
    forced = run_cli("notebooks", str(folder), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert edited.read_bytes() == NOTEBOOKS[0].read_bytes()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert run_cli("notebooks", str(a_file), cwd=tmp_path).returncode == 2


def test_a_copied_notebook_finds_the_database_above_its_folder(
    tmp_path: Path, loaded_db: Path
) -> None:
    """What the notebooks' first cell does, in a kernel's working folder: no checkout."""
    folder = tmp_path / "work"
    assert run_cli("notebooks", str(folder), cwd=tmp_path).returncode == 0
    shutil.copy(loaded_db, tmp_path / "batchlens.duckdb")
    env = {k: v for k, v in cli_env().items() if k != nb.DB_ENV}
    first_cell = "from batchlens.notebooks import helper as nb; print(nb.open_db().path)"
    result = subprocess.run(
        [sys.executable, "-c", first_cell],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "batchlens.duckdb")


def test_databases_that_cannot_answer(tmp_path: Path) -> None:
    no_views = tmp_path / "no_views.duckdb"
    duckdb.connect(str(no_views)).close()
    not_duckdb = tmp_path / "not.duckdb"
    not_duckdb.write_text("not a database")
    empty = load(tmp_path / "empty.duckdb", batches=0)
    expected = {
        tmp_path / "missing.duckdb": "There is no database at",
        no_views: "has no batchlens views:",
        not_duckdb: "Cannot read the database",
        empty: "holds no batches yet",
    }
    for path, start in expected.items():
        with pytest.raises(nb.NoDataError) as caught:
            nb.open_db(path)
        (line,) = caught.value._render_traceback_()
        assert start in line and str(path) in line and "\n" not in line


def test_a_notebook_leaves_no_connection_open(loaded_db: Path) -> None:
    db = nb.open_db(loaded_db)
    assert not db.df("select * from openai_batches.active_batches").empty
    duckdb.connect(str(loaded_db)).close()  # a writer could take the file right away


def test_empty_frame_says_no_data_yet() -> None:
    fig, ax = plt.subplots()
    assert nb.no_data(ax, pd.DataFrame({"day": [], "batches": []}))
    assert [text.get_text() for text in ax.texts] == [nb.NO_DATA]
    assert not nb.no_data(ax, pd.DataFrame({"batches": [1]}))
    plt.close(fig)


def test_build_says_one_line_without_a_database(
    tmp_path: Path, db_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db_env.setenv(nb.DB_ENV, str(tmp_path / "missing.duckdb"))
    assert main(["--out", str(tmp_path / "html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("batchlens: There is no database at") and err.count("\n") == 1
    assert not (tmp_path / "html").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_metadata_is_minimal(path: Path) -> None:
    raw = json.loads(path.read_text())
    extra = set(raw["metadata"]) - {"kernelspec"}
    extra |= {key for cell in raw["cells"] for key in cell["metadata"] if key != "tags"}
    assert not extra, f"{path.name}: metadata {sorted(extra)}; run {CLEAN} before committing"


def test_clean_strips_what_a_run_adds(tmp_path: Path, loaded_db: Path) -> None:
    path = tmp_path / NOTEBOOKS[0].name
    committed = NOTEBOOKS[0].read_text()
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    run(notebook, NOTEBOOKS[0].parent, loaded_db)
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11"}
    nbformat.write(notebook, path)
    assert clean(path)
    assert path.read_text() == committed
    assert not clean(path)
