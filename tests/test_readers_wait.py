"""Reading while cron writes (issue 25, item 5): DuckDB allows one writer and no reader
beside it, so a reader started during an `extract` waits for it (`--wait SECONDS`, a line on
stderr saying so) and then answers; when the wait runs out it names the extraction as an
extraction. A DuckDB session left open is not an extraction: it is named at once.

The writer is a process of its own: an extraction's stand-in that takes batchlens' lock file
and opens the file read-write, as `extract` does, for as long as the test says; and once a
real `batchlens extract` held up by a slow API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from batchlens.cli import build_parser
from batchlens.simulator.server import Simulator
from batchlens.storage import READ_WAIT_SECONDS
from helpers import KEY, cli_env, extract, run_cli

READERS = {
    "report": ["report", "--format", "json"],
    "sql": ["sql", "select count(*) as n from openai_batches.batches"],
    "prices": ["prices"],
    "failed-requests": ["failed-requests", "batch_none"],
    "check": ["check", "--format", "json"],
}


@pytest.fixture
def loaded(sim: Simulator, db: Path) -> Path:
    assert extract(sim, db).returncode == 0
    return db


@contextmanager
def extraction_holding(db: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """A process that holds `db` as an extraction does: the lock file, then the file."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.argv = ["batchlens", "extract"]  # what the lock file records of the command
        from batchlens.storage.duckdb_connection import connect
        from batchlens.storage.lock import DatabaseLock
        db = Path({str(db)!r})
        state = db.with_name(db.name + ".batchlens")
        state.mkdir(exist_ok=True)
        with DatabaseLock(state / "lock"):
            connection = connect(db)  # read-write: no reader beside it
            print("holding", flush=True)
            time.sleep({seconds})
            connection.close()
        print("released", flush=True)
    """)
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        holder.kill()
        holder.communicate()


def read(db: Path, command: str, *more: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*READERS[command], "--db", str(db), *more, cwd=db.parent)


def test_every_reader_has_the_same_default_wait() -> None:
    parser = build_parser()
    for command, words in READERS.items():
        assert parser.parse_args(words).wait == READ_WAIT_SECONDS == 8, command
    helped = " ".join(run_cli("report", "--help", cwd=Path.cwd()).stdout.split())
    assert "--wait SECONDS" in helped and "extraction" in helped


@pytest.mark.parametrize("command", ["report", "sql"])
def test_a_reader_waits_for_the_extraction_then_answers(loaded: Path, command: str) -> None:
    with extraction_holding(loaded, seconds=2) as holder:
        started = time.monotonic()
        result = read(loaded, command, "--wait", "30")
        waited = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert waited > 1, waited  # it did wait, for the writer rather than the whole --wait
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"batchlens: waiting up to 30 s for extraction PID {holder.pid} ")
    assert "`batchlens extract`" in line
    if command == "report":
        assert json.loads(result.stdout)["open_batches"]["total"] >= 0
    else:
        assert "1 row" in result.stdout


@pytest.mark.parametrize("command", sorted(READERS))
def test_when_the_wait_runs_out_the_extraction_is_named(loaded: Path, command: str) -> None:
    with extraction_holding(loaded, seconds=60) as holder:
        started = time.monotonic()
        result = read(loaded, command, "--wait", "1")
        assert time.monotonic() - started < 5
    assert result.returncode == 3, result.stdout + result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("batchlens: an extraction is writing the database "), last
    assert f"(pid {holder.pid} on " in last and "`batchlens extract`" in last
    assert "within 1 s" in last and "--wait" in last
    assert "Close that session" not in result.stderr and "Traceback" not in result.stderr
    if command == "check":  # UNKNOWN, said where a monitoring system looks
        assert json.loads(result.stdout)["status"] == "UNKNOWN"


def test_a_session_left_open_is_not_waited_for(loaded: Path) -> None:
    session = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(loaded)!r}); "
         "print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert session.stdout is not None and session.stdout.readline().strip() == "open"
        started = time.monotonic()
        result = read(loaded, "report", "--wait", "30")
        assert time.monotonic() - started < 5  # a session does not end by itself
    finally:
        session.kill()
        session.wait()
    assert result.returncode == 3
    (line,) = result.stderr.splitlines()
    assert f"process {session.pid}" in line and "Close that session" in line


@pytest.mark.slow  # a real extraction, in a process of its own
def test_a_report_during_a_real_extract_waits_for_it(loaded: Path) -> None:
    with Simulator(batches=50, seed=5, now=int(time.time()), api_key=KEY) as sim:
        sim.inject("timeout", on="list", times=1, delay=4)  # a slow first page
        writer = subprocess.Popen(
            [sys.executable, "-m", "batchlens", "extract", "--db", str(loaded),
             "--base-url", sim.url],
            cwd=loaded.parent, env=cli_env(RUNTIME__REQUEST_TIMEOUT="10"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            lock = loaded.with_name(loaded.name + ".batchlens") / "lock"
            deadline = time.monotonic() + 60
            while not (lock.exists() and str(writer.pid) in lock.read_text()):
                assert time.monotonic() < deadline and writer.poll() is None
                time.sleep(0.05)
            time.sleep(0.5)  # the lock is taken just before the file is opened
            result = read(loaded, "report", "--wait", "60")
            assert writer.wait(timeout=60) == 0
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.communicate()
    assert result.returncode == 0, result.stderr
    assert f"for extraction PID {writer.pid} (`batchlens extract`" in result.stderr
    assert json.loads(result.stdout)["open_batches"]["total"] >= 0
