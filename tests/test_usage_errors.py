"""Ordinary mistakes end in one clear line and exit 2, never "unexpected error" or a
traceback, and a refused `--db` leaves nothing behind (issue 25, item 4): a folder that
takes no file, `/proc`, a folder or a text file as the database. `check` keeps its own
UNKNOWN (3) for an `--output` it cannot write, with one line and no Prometheus text on
stdout.

The tests run as root here, and root writes through permission bits: a folder that takes
no file is a read-only tmpfs mounted over it, else an immutable folder (`chattr +i`), else,
for another user, mode 0555.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchlens.simulator.server import Simulator
from helpers import extract, run_cli

READERS = {
    "report": ["report"],
    "sql": ["sql", "select 1"],
    "prices": ["prices"],
    "failed-requests": ["failed-requests", "batch_x"],
    "models": ["models"],
}


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr, after checking it is one clear line."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("batchlens: "), lines
    assert "unexpected error" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


def _takes_no_file(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


@contextlib.contextmanager
def unwritable_folder(base: Path) -> Iterator[Path]:
    folder = base / f"ro-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    undo: list[str] = []
    if os.geteuid() == 0:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
            capture_output=True, check=False,
        )  # fmt: skip
        if mounted.returncode == 0:
            undo = ["umount", str(folder)]
        elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
            undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
    try:
        if not _takes_no_file(folder):
            pytest.skip("SKIPPED: no way here to make a folder that takes no file")
        yield folder
    finally:
        if undo:
            subprocess.run(undo, check=False)
        folder.chmod(0o755)


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    return notes


def state_folders(tmp_path: Path) -> list[str]:
    return sorted(path.name for path in tmp_path.glob("*.batchlens"))


def test_the_demo_into_a_folder_that_takes_no_file(tmp_path: Path) -> None:
    with unwritable_folder(tmp_path) as folder:
        result = run_cli("demo", "--db", str(folder / "demo.duckdb"), "--batches", "20",
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2
        assert "the folder of the database is not writable" in one_line(result)
        assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", ["demo", "extract"])
def test_a_database_in_proc(sim: Simulator, tmp_path: Path, command: str) -> None:
    """/proc takes no file even for root: its permission bits say otherwise."""
    more = ["--batches", "20"] if command == "demo" else ["--base-url", sim.url]
    result = run_cli(command, "--db", "/proc/x.duckdb", *more, cwd=tmp_path)
    assert result.returncode == 2
    assert "the folder of the database is not writable: /proc" in one_line(result)
    assert sim.requests == []


def test_extract_into_a_folder_that_takes_no_file(sim: Simulator, tmp_path: Path) -> None:
    with unwritable_folder(tmp_path) as folder:
        result = extract(sim, folder / "x.duckdb")
        assert result.returncode == 2
        assert "not writable" in one_line(result)
        assert list(folder.iterdir()) == [] and sim.requests == []


@pytest.mark.parametrize("command", [*READERS, "extract"])
def test_a_text_file_as_the_database(
    sim: Simulator, tmp_path: Path, text_file: Path, command: str
) -> None:
    words = READERS.get(command, ["extract", "--base-url", sim.url])
    result = run_cli(*words, "--db", str(text_file), cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result) == (
        f"batchlens: cannot open the database {text_file}: the file is not a DuckDB database"
    )
    assert text_file.read_text() == "my notes\n"
    assert state_folders(tmp_path) == []  # refused: nothing beside it


@pytest.mark.parametrize("command", [*READERS, "extract", "demo"])
def test_a_folder_as_the_database_says_it_is_a_folder(
    sim: Simulator, tmp_path: Path, command: str
) -> None:
    folder = tmp_path / "some_folder"
    folder.mkdir()
    words = READERS.get(command) or (
        ["extract", "--base-url", sim.url] if command == "extract" else ["demo", "--batches", "20"]
    )
    result = run_cli(*words, "--db", str(folder), cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result) == (
        f"batchlens: the database path is a folder, not a DuckDB file: {folder}"
    )
    assert state_folders(tmp_path) == [] and list(folder.iterdir()) == []


def test_check_on_a_text_file_is_unknown_in_one_line(tmp_path: Path, text_file: Path) -> None:
    result = run_cli("check", "--db", str(text_file), cwd=tmp_path)
    assert result.returncode == 3
    assert "not a DuckDB database" in one_line(result)
    assert result.stdout.startswith("BATCHLENS UNKNOWN - cannot open the database")


@pytest.mark.parametrize("fmt", ["prometheus", "text", "json"])
def test_check_output_into_a_folder_that_takes_no_file(
    sim: Simulator, db: Path, tmp_path: Path, fmt: str
) -> None:
    """UNKNOWN (3), the monitoring-plugin contract; one line saying why; a plugin's reader
    finds UNKNOWN on stdout, but Prometheus text there would pass for a result."""
    assert extract(sim, db).returncode == 0
    with unwritable_folder(tmp_path) as folder:
        out = folder / "batchlens.prom"
        result = run_cli("check", "--db", str(db), "--format", fmt, "--output", str(out),
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 3
        line = one_line(result)
        assert line.startswith(
            f"batchlens: the folder of the --output file is not writable: {folder}"
        )
        assert list(folder.iterdir()) == []
    if fmt == "prometheus":
        assert result.stdout == ""
    elif fmt == "text":
        assert result.stdout == f"BATCHLENS UNKNOWN - {line.removeprefix('batchlens: ')}\n"
    else:
        assert '"status": "UNKNOWN"' in result.stdout
