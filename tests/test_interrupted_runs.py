"""A run stopped halfway keeps what its steps committed, and the next run reads the rest.

A first run and a `--full` run read the whole list and commit it in steps (here every 500
batches, `[batchlens] commit_every_batches`); each step lands with the state that says
where the next one goes on. Stopped by a failure after its retries, SIGINT, SIGTERM or
SIGKILL, the run leaves its committed steps, and the next run reads what is missing (the
rest of the list from where it stopped, and what is new at the head), not the whole
history again. Every test ends with the database equal to the simulator's history.
"""

from __future__ import annotations

import math
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from batchlens.simulator.server import LIST_PATH, Simulator
from helpers import (
    KEY,
    assert_matches_history,
    cli_command,
    cli_env,
    extract,
    summary,
)
from openai_batches.api_client import BatchesApi
from openai_batches.incremental import Part
from openai_batches.parallel import read_parts

NO_FILES = ("--requests", "none")
STEPS = {"BATCHLENS__COMMIT_EVERY_BATCHES": "500", "RUNTIME__REQUEST_MAX_ATTEMPTS": "2"}


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def stored_count(db: Path) -> int:
    return query(db, "select count(*) from openai_batches.batches")[0][0]


def assert_no_duplicates(db: Path) -> None:
    assert query(
        db, "select count(*) - count(distinct (account, id)) from openai_batches.batches"
    ) == [(0,)]


def fail_the_page_after(sim: Simulator, batch_id: str) -> None:
    """The list page after `batch_id` answers 500, retries included."""
    sim.inject("500", on="list", match=f"'after', '{batch_id}'")


def test_a_first_run_that_fails_halfway_is_finished_by_one_that_reads_the_rest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "first.duckdb"
    env = cli_env(**STEPS)
    with Simulator(batches=2_000, seed=3, api_key=KEY) as sim:
        ids = [batch["id"] for batch in sim.visible()]
        fail_the_page_after(sim, ids[1_199])  # page 13: two steps of five pages are in
        failed = extract(sim, db, *NO_FILES, env=env)
        assert failed.returncode == 1, failed.stderr
        assert stored_count(db) == 1_000  # kept, with the state that says where it stopped
        assert query(
            db, "select batches_loaded, unfinished_walk from openai_batches.extractions"
        ) == [(500, "first"), (500, "first")]

        sim.clear_faults()
        sim.advance(3_600)
        sim.add_batches(30, same_second=False)
        sim.reset_requests()
        resumed = extract(sim, db, *NO_FILES, env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert_matches_history(db, sim)
        assert_no_duplicates(db)
        assert "resuming the first run where it stopped (1000 batches read" in resumed.stderr
        assert summary(resumed)["new"] == 1_030
        # the ten pages below where it stopped, and the head's new batches: not 21 pages
        afters = [q.get("after") for _, path, q, _ in sim.requests if path == LIST_PATH]
        assert ids[999] in afters  # where it stopped
        assert not {ids[i] for i in range(199, 999, 100)} & set(afters)  # nothing it had
        assert len(afters) <= 10 + 3
        # and the walk is over: the next run is an incremental one
        sim.reset_requests()
        assert extract(sim, db, *NO_FILES, env=env).returncode == 0
        assert sim.list_requests <= 2


def test_a_full_run_that_fails_halfway_is_finished_by_the_next_run(tmp_path: Path) -> None:
    db = tmp_path / "full.duckdb"
    env = cli_env(**STEPS)
    with Simulator(batches=3_000, seed=4, api_key=KEY) as sim:
        assert extract(sim, db, *NO_FILES).returncode == 0
        sim.advance(2 * 86_400)
        ids = [batch["id"] for batch in sim.visible()]
        # 3 segments of 1,000 read at once (after ids[1000], ids[2000]); the bottom one
        # fails on its seventh page
        fail_the_page_after(sim, ids[2_600])
        sim.reset_requests()
        failed = extract(sim, db, "--full", *NO_FILES, env=env)
        assert failed.returncode == 1, failed.stderr
        assert sim.faults_injected == 2
        read_before = sim.list_requests
        walked = query(
            db,
            "select sum(batches_loaded) from openai_batches.extractions "
            "where unfinished_walk = 'full'",
        )[0][0]
        assert walked and walked >= 1_000

        sim.clear_faults()
        sim.reset_requests()
        resumed = extract(sim, db, *NO_FILES, env=env)  # the hourly run, without --full
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming the --full run where it stopped" in resumed.stderr
        assert_matches_history(db, sim)
        assert_no_duplicates(db)
        # what the walk had not read, one page more for each segment, and the head
        missing = math.ceil((3_000 - walked) / 100)
        assert sim.list_requests <= missing + 3 + 3
        assert read_before + sim.list_requests < 2 * 31


def test_parts_whose_start_is_gone_are_read_by_the_part_above(tmp_path: Path) -> None:
    with Simulator(batches=1_000, seed=6, api_key=KEY) as sim:
        ids = [batch["id"] for batch in sim.visible()]
        created = {batch["id"]: batch["created_at"] for batch in sim.visible()}
        mark = lambda i: (ids[i], created[ids[i]])  # noqa: E731
        # a walk stopped in three parts; then the batches two of them go on from are deleted
        parts = [Part(mark(150), mark(400)), Part(mark(420), mark(700)), Part(mark(750), None)]
        sim.delete_batches([ids[150], ids[420]])
        api = BatchesApi(sim.url, KEY)
        pages = list(read_parts(api, parts))
        read = [batch["id"] for page in pages for batch in page.batches]
    assert len(read) == len(set(read))
    # the topmost has no part above: it reads from the top; the middle one is read by it
    assert set(ids[:400]) - {ids[150]} <= set(read)
    assert set(ids[401:700]) - {ids[420]} <= set(read)
    assert set(ids[751:]) <= set(read)
    assert {page.through for page in pages if page.index == 0} == {1}
    assert ids[-1] in read and pages[-1].done


@pytest.mark.parametrize("value", ["0", "-5", "many", "inf"])
def test_a_step_limit_that_is_not_a_number_above_0_exits_2(
    sim: Simulator, db: Path, value: str
) -> None:
    result = extract(sim, db, env=cli_env(BATCHLENS__COMMIT_EVERY_SECONDS=value))
    assert result.returncode == 2, result.stderr
    assert "commit_every_seconds" in result.stderr and not db.exists()
    assert sim.requests == []


# --- signals and SIGKILL, in a process of its own --------------------------------------------


def start(sim: Simulator, db: Path, *more: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command("extract", "--db", str(db), "--base-url", sim.url, *more),
        cwd=db.parent,
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def stop(process: subprocess.Popen, how: str) -> tuple[str, str]:
    if how == "SIGKILL":
        process.kill()
    else:
        process.send_signal(getattr(signal, how))
    out, err = process.communicate(timeout=60)
    if how != "SIGKILL":
        assert process.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
    return out, err


def test_sigterm_during_the_downloads_keeps_the_batches_and_the_complete_files(
    tmp_path: Path,
) -> None:
    db = tmp_path / "files.duckdb"
    with Simulator(batches=150, seed=21, api_key=KEY) as sim:
        assert extract(sim, db, *NO_FILES).returncode == 0
        sim.advance(86_400)
        sim.add_batches(12, same_second=False, scenario="partial_failures")
        sim.advance(2 * 86_400)  # they ended: new batches, and their files
        sim.inject("timeout", on="content", times=1, delay=2.0)  # one download hangs
        process = start(sim, db)
        wait_until(lambda: sim.faults_injected >= 1, process)
        time.sleep(0.5)  # the other downloads end meanwhile
        stop(process, "SIGTERM")
        ledger = dict(query(db, "select file_id, state from openai_batches.batch_files"))
        assert ledger and set(ledger.values()) <= {"loaded", "expired", "missing"}
        assert_matches_history(db, sim)  # the interrupted run's batches are in

        sim.reset_requests()
        result = extract(sim, db)
        assert result.returncode == 0, result.stderr
        # only the abandoned download is asked again: every complete file was committed
        (hung,) = [
            path.split("/")[3] for _, path, _, _ in sim.requests if path.endswith("/content")
        ]
        assert hung not in ledger
        assert query(
            db,
            "select count(*) - count(distinct (batch_id, custom_id)) "
            "from openai_batches.batch_requests",
        ) == [(0,)]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_first_run_stopped_at_70_percent_is_finished_by_a_run_that_reads_the_rest(
    tmp_path: Path, how: str
) -> None:
    db = tmp_path / "long.duckdb"
    pages = 100
    with Simulator(batches=pages * 100, seed=8, api_key=KEY, latency=0.01) as sim:
        process = start(sim, db, *NO_FILES, BATCHLENS__COMMIT_EVERY_BATCHES="1000")
        wait_until(lambda: sim.list_requests >= 70, process)
        stop(process, how)
        sim.reset_requests()
        result = extract(sim, db, *NO_FILES)
        assert result.returncode == 0, result.stderr
        assert_matches_history(db, sim)
        assert_no_duplicates(db)
        # what the follow-up added is what the stopped run had not committed (a step that
        # a signal or the kill caught in its load is landed by the follow-up first)
        missing = summary(result)["new"]
        assert missing <= (45 if how == "SIGKILL" else 40) * 100, missing
        # its requests: the missing pages, and what any incremental run asks on top (the
        # pages at the head that refresh the open batches, the retrieves of the others)
        asked = sim.list_requests + sim.retrieve_requests
        sim.reset_requests()
        assert extract(sim, db, *NO_FILES).returncode == 0
        incremental = sim.list_requests + sim.retrieve_requests
        assert asked <= math.ceil(missing / 100) + incremental + 2, (asked, missing, incremental)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_full_run_stopped_halfway_is_finished_by_the_next_run(tmp_path: Path, how: str) -> None:
    db = tmp_path / "reconcile.duckdb"
    with Simulator(batches=8_000, seed=9, api_key=KEY) as sim:
        assert extract(sim, db, *NO_FILES).returncode == 0
        sim.advance(3 * 86_400)
        sim.latency = 0.01
        sim.reset_requests()
        process = start(sim, db, "--full", *NO_FILES, BATCHLENS__COMMIT_EVERY_BATCHES="1000")
        wait_until(lambda: sim.list_requests >= 50, process)
        stop(process, how)
        walked = query(
            db,
            "select coalesce(sum(batches_loaded), 0) from openai_batches.extractions "
            "where unfinished_walk = 'full'",
        )[0][0]
        sim.latency = 0.0
        sim.add_batches(40, same_second=False)
        sim.reset_requests()
        result = extract(sim, db, *NO_FILES)
        assert result.returncode == 0, result.stderr
        assert_matches_history(db, sim)
        assert_no_duplicates(db)
        assert walked > 0, "the run was stopped before its first step landed"
        assert "resuming the --full run" in result.stderr
        # the missing pages, one more for each of the four segments, and the head
        missing = math.ceil((8_000 - walked) / 100)
        assert sim.list_requests <= missing + 4 + 3, (sim.list_requests, missing)
