"""The rest of the CLI contract: where the database goes, simulate, models, report, odd input."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests

from batchlens import cli, start
from batchlens.simulator.server import Simulator
from helpers import (
    KEY,
    assert_matches_history,
    cli_command,
    cli_env,
    extract,
    run_cli,
    snapshot,
    summary,
)


def test_db_defaults_to_batchlens_db_then_the_working_directory(
    sim: Simulator, tmp_path: Path
) -> None:
    target = tmp_path / "from-env.duckdb"
    result = run_cli(
        "extract", "--base-url", sim.url, cwd=tmp_path, env=cli_env(BATCHLENS_DB=str(target))
    )
    assert result.returncode == 0, result.stderr
    assert f"db={target}" in result.stdout
    assert_matches_history(target, sim)
    result = run_cli("extract", "--base-url", sim.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_matches_history(tmp_path / "batchlens.duckdb", sim)


def test_the_obvious_query_works_on_the_default_file_and_the_old_name_still_works(
    sim: Simulator, tmp_path: Path
) -> None:
    """`openai_batches.open_batches` in a plain DuckDB session, as any client opens it."""
    assert run_cli("extract", "--base-url", sim.url, cwd=tmp_path).returncode == 0
    expected = sum(
        b["status"] in ("validating", "in_progress", "finalizing", "cancelling")
        for b in sim.visible()
    )
    with duckdb.connect(str(tmp_path / "batchlens.duckdb"), read_only=True) as con:
        (count,) = con.execute("select count(*) from openai_batches.open_batches").fetchone()
    assert count == expected > 0
    # a file named after the dataset, from before the default changed, keeps working
    old = tmp_path / "openai_batches.duckdb"
    assert extract(sim, old).returncode == 0
    assert_matches_history(old, sim)
    result = run_cli("report", "--db", str(old), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["open_batches"]["total"] == expected


def test_millisecond_timestamps_are_stored_as_seconds(sim: Simulator, db: Path) -> None:
    sim.inject("ms_timestamps", on="list")  # every page, until cleared
    result = extract(sim, db)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, sim)


@contextlib.contextmanager
def read_only_folder(base: Path) -> Iterator[Path]:
    """A folder nobody may write to: a read-only mount as root, else mode 0555."""
    folder = base / f"ro-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            pytest.skip(f"root here cannot make a read-only folder: {mounted.stderr!r}")
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=False)
    else:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


def test_a_database_in_a_read_only_folder_exits_2(sim: Simulator, tmp_path: Path) -> None:
    with read_only_folder(tmp_path) as folder:
        result = extract(sim, folder / "x.duckdb")
        assert result.returncode == 2
        assert "not writable" in result.stderr and "Traceback" not in result.stderr
        assert sim.requests == [] and list(folder.iterdir()) == []


@contextlib.contextmanager
def simulating(cwd: Path, *options: str) -> Iterator[tuple[str, str]]:
    """`batchlens simulate` in its own process: (its URL, its key), stopped at the end."""
    process = subprocess.Popen(
        cli_command("simulate", "--port", "0", *options),
        cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        yield url.rstrip("/"), line.split("api key:")[-1].strip(" )\n")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode in (0, -15)


def test_simulate_serves_the_api_in_the_foreground(tmp_path: Path) -> None:
    with simulating(tmp_path, "--batches", "150", "--seed", "3") as (url, key):
        page = requests.get(
            f"{url}/batches", params={"limit": 100},
            headers={"Authorization": f"Bearer {key}"}, timeout=10,
        ).json()  # fmt: skip
    assert page["object"] == "list" and len(page["data"]) == 100 and page["has_more"]


def test_every_option_of_every_command_says_what_it_is() -> None:
    """`--help` (and docs/cli.md, generated from it) explains each option and argument."""
    import argparse

    from batchlens.cli import build_parser

    commands = next(
        action for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )  # fmt: skip
    silent = [
        f"{name} {action.option_strings or action.dest}"
        for name, command in commands.choices.items()
        for action in command._actions
        if not action.help and "--help" not in action.option_strings
    ]
    assert not silent, silent


def test_simulate_takes_a_latency(tmp_path: Path) -> None:
    helped = " ".join(run_cli("simulate", "--help", cwd=tmp_path).stdout.split())
    assert "--latency SECONDS" in helped and "round trip" in helped
    assert "--batches N batches in the simulated history" in helped
    assert "--seed N seed of the random history" in helped
    assert run_cli("simulate", "--latency", "-1", cwd=tmp_path).returncode == 2
    with simulating(tmp_path, "--batches", "20", "--latency", "0.4") as (url, key):
        started = time.monotonic()
        answer = requests.get(
            f"{url}/batches", params={"limit": 1},
            headers={"Authorization": f"Bearer {key}"}, timeout=10,
        )  # fmt: skip
        waited = time.monotonic() - started
    assert answer.status_code == 200 and waited >= 0.4


def test_models_and_report_on_a_loaded_database(sim: Simulator, db: Path) -> None:
    assert extract(sim, db).returncode == 0
    built = run_cli("models", "--db", str(db), cwd=db.parent)
    assert built.returncode == 0 and "built" in built.stdout
    report = run_cli("report", "--db", str(db), "--format", "json", cwd=db.parent)
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    active = {row["status"]: row["batches"] for row in document["active"]}
    expected = {s: 0 for s in ("validating", "in_progress", "finalizing", "cancelling")}
    for batch in sim.visible():
        if batch["status"] in expected:
            expected[batch["status"]] += 1
    assert active == expected


@pytest.mark.parametrize("command", ["models", "report"])
def test_models_and_report_without_a_database_exit_2(tmp_path: Path, command: str) -> None:
    result = run_cli(command, "--db", str(tmp_path / "missing.duckdb"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("batchlens: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "missing.duckdb").exists()


def test_report_rejects_a_window_below_one_day(tmp_path: Path) -> None:
    result = run_cli("report", "--days", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--days" in result.stderr


def test_a_crash_free_run_after_faults_is_idempotent(sim: Simulator, db: Path) -> None:
    assert extract(sim, db).returncode == 0
    before = snapshot(db)
    result = extract(sim, db)
    assert result.returncode == 0 and summary(result)["new"] == 0
    after = snapshot(db)
    # only the bookkeeping of the second run differs: the batches are byte for byte the same
    tables = lambda snap: {name: rows for name, rows in snap if name.startswith("batches")}  # noqa: E731
    assert tables(before) == tables(after)
    assert KEY not in result.stdout + result.stderr


def test_the_command_runs_with_its_imports_frozen_and_the_collector_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, object] = {}

    def command() -> int:
        seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count())
        return 4

    monkeypatch.setattr(cli, "main", command)
    monkeypatch.setattr(start.os, "_exit", lambda code: seen.update(code=code))
    try:
        start.entry()
    finally:
        gc.unfreeze()  # this test process's objects go back to the collector
    assert seen["enabled"] is True  # the run's own garbage is still collected
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000
    assert seen["code"] == 4  # the command's exit code, without the interpreter's teardown


def test_a_sigterm_whose_interrupt_was_swallowed_still_ends_the_command_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Raised inside an import's callback or C++ code, the KeyboardInterrupt of a SIGTERM can
    be dropped and the command goes on: it still exits 130, as interrupted."""

    def command(args: object, redact: object) -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler raises here
        except KeyboardInterrupt:
            pass  # dropped, as DuckDB's import of pandas dropped it
        return 0

    monkeypatch.setitem(cli.COMMANDS, "models", command)
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    logger = logging.getLogger("batchlens")
    handlers, propagate = list(logger.handlers), logger.propagate
    try:
        code = cli.main(["models", "--db", str(tmp_path / "x.duckdb")])
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        # the run's handler writes to this test's captured stderr, closed after it
        logger.handlers[:], logger.propagate = handlers, propagate
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
