"""Test helpers: the CLI as a user runs it, and a database compared with the simulator."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from batchlens.simulator.server import Simulator
from batchlens.storage.duckdb_connection import connect
from openai_batches.settings import TIMESTAMP_FIELDS

# Recognisable, so that a leak anywhere is found by a plain byte search.
KEY = "sk-test-CANARY-7f3a9c51e2d8-batchlens"
TIMESTAMPS = TIMESTAMP_FIELDS


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "OPENAI_"))}
    env.update(
        OPENAI_API_KEY=KEY,
        RUNTIME__DLTHUB_TELEMETRY="false",
        # fast retries: the faults are on loopback, not in a real outage
        RUNTIME__REQUEST_BACKOFF_FACTOR="0.02",
        RUNTIME__REQUEST_MAX_RETRY_DELAY="0.5",
        RUNTIME__REQUEST_TIMEOUT="3",
    )
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "batchlens", *args]


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    own_process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`batchlens ARGS` in `cwd` with exactly `env`: its exit code, stdout and stderr.

    In this process by default: starting Python and importing dlt costs 2-3 s a run, and
    the suite makes hundreds. `own_process` for what only a process shows: signals, locks
    held by another process, the interpreter's start-up, stdout closed under it.
    """
    if own_process:
        result = subprocess.run(
            cli_command(*args),
            cwd=cwd,
            env=env or cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    else:
        result = _run_in_process(list(args), cwd, env or cli_env())
    # every run of every test doubles as a leak test
    assert KEY not in result.stdout + result.stderr, "the API key was printed"
    return result


def _run_in_process(
    args: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    from batchlens import cli

    out, err = io.StringIO(), io.StringIO()
    with (
        _like_a_process(cwd, env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = cli.main(args)
        except SystemExit as exc:  # --help, --version
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return subprocess.CompletedProcess(cli_command(*args), code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _like_a_process(cwd: Path, env: dict[str, str]) -> Iterator[None]:
    """What a new process would start from: this environment and working directory, dlt's
    configuration read from them, and no handler left behind by the run."""
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_term = signal.getsignal(signal.SIGTERM)
    logger = logging.getLogger("batchlens")
    saved_handlers, saved_propagate = list(logger.handlers), logger.propagate
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    Container()[PluggableRunContext].reload(str(cwd))  # .dlt/*.toml of this directory
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        Container()[PluggableRunContext].reload(saved_cwd)
        signal.signal(signal.SIGTERM, saved_term)
        logger.handlers[:] = saved_handlers
        logger.propagate = saved_propagate


def extract(
    sim: Simulator, db: Path, *more: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("extract", "--db", str(db), "--base-url", sim.url, *more, cwd=db.parent, env=env)


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, float]:
    """The key=value pairs of the one summary line on stdout."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("batchlens extract:")]
    assert len(lines) == 1, result.stdout + result.stderr
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)\b", lines[0])}


def epoch(value: object) -> int | None:
    return None if value is None else int(value.timestamp())  # type: ignore[attr-defined]


COMPARED = [
    "id",
    "status",
    "endpoint",
    "model",
    *TIMESTAMPS,
    "request_counts__total",
    "request_counts__completed",
    "request_counts__failed",
    "usage__total_tokens",
    "output_file_id",
    "error_file_id",
]


def read_batches(query: Callable[[str], list[tuple]], account: str = "default") -> dict[str, dict]:
    """Every stored batch in the API's own shape (the fields the comparison covers).

    `query` runs one SQL statement on whichever database holds the tables and returns its
    rows: DuckDB, PostgreSQL and DuckLake are read the same way.
    """
    where = f"where account = '{account}'"
    stored = {}
    for row in query(f"select {', '.join(COMPARED)} from openai_batches.batches {where}"):
        record = dict(zip(COMPARED, row, strict=True))
        for name in TIMESTAMPS:
            record[name] = epoch(record[name])
        record["errors"] = []
        stored[record["id"]] = record
    for batch_id, code, message, line in query(
        "select batch_id, code, message, line from openai_batches.batches__errors__data "
        f"{where} order by batch_id, position"
    ):
        stored[batch_id]["errors"].append((code, message, line))
    return stored


def stored_batches(db: Path, account: str = "default") -> dict[str, dict]:
    with connect(db, read_only=True) as con:
        return read_batches(lambda sql: con.execute(sql).fetchall(), account)


def expected_batches(visible: list[dict]) -> dict[str, dict]:
    """The same fields, read straight from the simulator's objects."""
    expected = {}
    for batch in visible:
        counts = batch.get("request_counts") or {}
        errors = (batch.get("errors") or {}).get("data") or []
        expected[batch["id"]] = {
            "id": batch["id"],
            "status": batch["status"],
            "endpoint": batch["endpoint"],
            "model": batch.get("model"),
            **{name: batch.get(name) for name in TIMESTAMPS},
            "request_counts__total": counts.get("total"),
            "request_counts__completed": counts.get("completed"),
            "request_counts__failed": counts.get("failed"),
            "usage__total_tokens": (batch.get("usage") or {}).get("total_tokens"),
            "output_file_id": batch.get("output_file_id"),
            "error_file_id": batch.get("error_file_id"),
            "errors": [(e.get("code"), e.get("message"), e.get("line")) for e in errors],
        }
    return expected


def assert_matches_history(db: Path, sim: Simulator, account: str = "default") -> None:
    stored = stored_batches(db, account)
    expected = expected_batches(sim.visible())
    assert stored.keys() == expected.keys()
    different = [i for i in expected if stored[i] != expected[i]]
    assert not different, (different[:3], stored[different[0]], expected[different[0]])


def snapshot(db: Path) -> tuple:
    """Everything a failed run must leave exactly as it was: rows and incremental state."""
    if not db.exists():
        return ()
    with connect(db, read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'openai_batches' and table_type = 'BASE TABLE' order by 1"
        ).fetchall()
        contents = tuple(
            (
                name,
                sorted(map(repr, con.execute(f'select * from openai_batches."{name}"').fetchall())),
            )
            for (name,) in tables
        )
    return contents
