"""Every documented exit code, each with a clear one-line message and an untouched database."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from batchlens.simulator.server import Simulator
from helpers import KEY, cli_env, extract, run_cli, snapshot


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("batchlens:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def loaded(sim: Simulator, db: Path) -> tuple:
    """A database after one good run, and its snapshot."""
    assert extract(sim, db).returncode == 0
    sim.advance(86400)
    sim.add_batches(5)
    sim.reset_requests()
    return snapshot(db)


# --- 1: failure after retries, or an answer that is not a valid list page -----------------


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("malformed", "not JSON"),
        ("html", "gateway could not use"),
        ("stuck_cursor", "cursor does not advance"),
        ("empty_more", "has_more with an empty page"),
        ("500", "HTTP 500 after retries"),
        ("503", "HTTP 503 after retries"),
    ],
)
def test_invalid_answers_exit_1_and_change_nothing(
    sim: Simulator, db: Path, loaded: tuple, kind: str, message: str
) -> None:
    sim.inject(kind, times=50, on="list")
    result = extract(sim, db, "--full", env=cli_env(RUNTIME__REQUEST_MAX_ATTEMPTS="2"))
    assert result.returncode == 1
    assert message in one_line_error(result)
    assert snapshot(db) == loaded
    sim.clear_faults()
    assert extract(sim, db).returncode == 0  # and the next run picks everything up


def test_an_unreachable_api_exits_1(db: Path) -> None:
    result = run_cli(
        "extract", "--db", str(db), "--base-url", "http://127.0.0.1:9/v1", cwd=db.parent,
        env=cli_env(RUNTIME__REQUEST_MAX_ATTEMPTS="2"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "could not reach the API" in one_line_error(result)


# --- 2: usage or configuration --------------------------------------------------------------


def test_no_api_key_exits_2(sim: Simulator, db: Path) -> None:
    env = cli_env()
    del env["OPENAI_API_KEY"]
    result = extract(sim, db, env=env)
    assert result.returncode == 2
    assert "no API key" in one_line_error(result)
    assert not db.exists()


def test_the_dlt_way_of_configuring_the_key_wins_over_openai_api_key(
    sim: Simulator, db: Path
) -> None:
    env = cli_env(OPENAI_API_KEY="sk-wrong-key-for-sure", SOURCES__OPENAI_BATCHES__API_KEY=KEY)
    assert extract(sim, db, env=env).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--header", "no colon here"], "--header must look like"),
        (["--db", "/nonexistent-folder/x.duckdb"], "folder of the database does not exist"),
        (["--base-url", "ftp://example"], "must start with http"),
    ],
)
def test_bad_options_exit_2(sim: Simulator, tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("extract", "--base-url", sim.url, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in one_line_error(result)
    assert sim.requests == []


def test_unknown_option_exits_2(tmp_path: Path) -> None:
    assert run_cli("extract", "--bogus", cwd=tmp_path).returncode == 2


def test_a_file_that_is_not_a_database_exits_2(sim: Simulator, db: Path) -> None:
    db.write_text("not a duckdb file")
    result = extract(sim, db)
    assert result.returncode == 2
    assert "cannot open the database" in one_line_error(result)
    assert db.read_text() == "not a duckdb file"


# --- 3: another process holds the database --------------------------------------------------


def test_a_held_lock_exits_3_fast_naming_the_holder(sim: Simulator, db: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            textwrap.dedent(f"""
                import sys, time
                from pathlib import Path
                from batchlens.storage.lock import DatabaseLock
                from batchlens.run.extract import state_dir
                db = Path({str(db)!r})
                state_dir(db).mkdir(exist_ok=True)
                with DatabaseLock(state_dir(db) / "lock"):
                    print("held", flush=True)
                    time.sleep(30)
            """),
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        result = extract(sim, db)
        assert time.monotonic() - started < 2 + 1.5  # the 2 s contract plus the run's set-up
        assert result.returncode == 3
        assert f"pid {holder.pid}" in one_line_error(result)
        assert not db.exists() and sim.requests == []
    finally:
        holder.kill()
        holder.wait()


def test_a_duckdb_session_left_open_gets_a_clear_message(
    sim: Simulator, db: Path, loaded: tuple
) -> None:
    reader = subprocess.Popen(
        [
            sys.executable, "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}, read_only=True); "
            "print('open', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdout.readline().strip() == "open"
        result = extract(sim, db)
        assert result.returncode == 3
        message = one_line_error(result)
        assert f"process {reader.pid}" in message and "Close that session" in message
        assert sim.requests == []
    finally:
        reader.kill()
        reader.wait()
    assert snapshot(db) == loaded


# --- 4: the API refused the credentials or the URL ------------------------------------------


def test_a_wrong_key_exits_4_with_the_api_message(sim: Simulator, db: Path) -> None:
    result = extract(sim, db, env=cli_env(OPENAI_API_KEY="sk-wrong-CANARY-0042-batchlens"))
    assert result.returncode == 4
    message = one_line_error(result)
    assert "HTTP 401" in message and "Incorrect API key provided" in message
    assert "sk-wrong-CANARY-0042-batchlens" not in result.stdout + result.stderr


def test_a_wrong_url_exits_4(sim: Simulator, db: Path) -> None:
    result = run_cli("extract", "--db", str(db), "--base-url", sim.url + "/nope", cwd=db.parent)
    assert result.returncode == 4
    assert "HTTP 404" in one_line_error(result)


def test_help_lists_the_exit_codes(tmp_path: Path) -> None:
    result = run_cli("extract", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "4 API refused" in " ".join(result.stdout.split())


def test_help_lists_every_exit_code_of_the_readme(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Exit codes", 1)[1].split("\n\n", 2)[1]
    codes = re.findall(r"^\| (\d+) \|", table, re.MULTILINE)
    assert {"0", "2", "130", "141"} <= set(codes)
    helped = " ".join(run_cli("extract", "--help", cwd=tmp_path).stdout.split())
    missing = [code for code in codes if not re.search(rf"(?:codes: |, ){code} \w", helped)]
    assert not missing, f"exit codes the README lists and --help does not: {missing}"
