"""Faults, crashes, overlapping runs and secrets: the database always ends equal to the API."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from batchlens.run.extract import state_dir
from batchlens.simulator.server import Simulator
from helpers import KEY, assert_matches_history, cli_command, cli_env, extract, summary


@pytest.fixture
def big_sim() -> Simulator:
    with Simulator(batches=6000, seed=5, api_key=KEY) as simulator:
        yield simulator


NO_FILES = ("--requests", "none")


def start_extract(sim: Simulator, db: Path, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command("extract", "--db", str(db), "--base-url", sim.url, *more),
        cwd=db.parent, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 60) -> bool:
    """Polls fast; False when the process ended before the condition held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    raise AssertionError("timed out waiting")


def packages_in(db: Path, stage: str) -> Callable[[], bool]:
    """True once dlt has a package in `normalize/extracted` or `load/normalized`."""
    folder = state_dir(db) / "pipelines" / "batchlens" / stage
    return lambda: folder.is_dir() and any(folder.iterdir())


def assert_no_duplicates(db: Path) -> None:
    with duckdb.connect(str(db), read_only=True) as con:
        rows, ids = con.execute(
            "select count(*), count(distinct (account, id)) from openai_batches.batches"
        ).fetchone()
    assert rows == ids


# every 3rd request is the harder case (more faults a run); every 5th runs in CI's slow part
@pytest.mark.parametrize("every", [3, pytest.param(5, marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "drop"])
def test_faults_are_retried_and_the_result_is_complete(
    sim: Simulator, db: Path, kind: str, every: int
) -> None:
    sim.inject(kind, every=every, retry_after="0")
    result = extract(sim, db)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, sim)
    assert sim.faults_injected >= 1
    assert summary(result)["retries"] == sim.faults_injected
    # incremental, still under faults
    sim.advance(2 * 86400)
    sim.add_batches(120, same_second=False)
    result = extract(sim, db)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, sim)


def test_on_a_link_that_fails_one_answer_in_six_a_run_with_every_file_completes(
    db: Path,
) -> None:
    """429, 500, dropped connections, bodies cut or reset halfway, on lists, retrieves and
    downloads alike: the run still ends complete, every file's rows once."""
    with Simulator(batches=60, seed=7, api_key=KEY) as sim:
        for kind, every in (("429", 20), ("500", 30), ("drop", 30), ("cut", 25), ("reset", 40)):
            sim.inject(kind, every=every, retry_after="0")
        for _run in ("first", "incremental"):
            result = extract(sim, db, "--requests", "all")
            assert result.returncode == 0, result.stderr
            assert summary(result)["files_failed"] == 0
            assert_matches_history(db, sim)
            with duckdb.connect(str(db), read_only=True) as con:
                rows = con.execute(
                    "select batch_id, kind, custom_id from openai_batches.batch_requests"
                ).fetchall()
                states = con.execute(
                    "select distinct state from openai_batches.batch_files"
                ).fetchall()
            assert len(rows) == len(set(rows)) and set(rows) == served_lines(sim)
            assert ("pending",) not in states
            sim.advance(2 * 86_400)  # the open batches end, with files of their own
            sim.add_batches(10, same_second=False, scenario="partial_failures")
            sim.advance(2 * 86_400)
        assert sim.faults_injected >= 10


def served_lines(sim: Simulator) -> set[tuple[str, str, str]]:
    """(batch, kind, custom_id) of every line of every terminal batch's file still served."""
    found = set()
    for batch in sim.visible():
        for kind in ("error", "output"):
            file_id = batch.get(f"{kind}_file_id")
            if batch["status"] in TERMINAL and file_id:
                try:
                    lines = sim.file_lines(file_id)
                except Exception:  # gone: 30 days after the batch ended
                    continue
                found.update((batch["id"], kind, line["custom_id"]) for line in lines)
    return found


TERMINAL = {"completed", "failed", "expired", "cancelled"}


def test_retry_after_is_honoured(sim: Simulator, db: Path) -> None:
    sim.inject("429", times=1, retry_after="2")
    started = time.monotonic()
    assert extract(sim, db).returncode == 0
    assert time.monotonic() - started >= 2


@pytest.mark.parametrize(
    ("stage", "files"),
    [
        ("mid-pagination", False),
        ("normalize/extracted", False),
        ("load/normalized", False),
        # with the request files' rows in the packages (more tables, more jobs): the
        # simulated history's error files hold millions of rows, a minute a test
        pytest.param("normalize/extracted", True, marks=pytest.mark.slow),
        pytest.param("load/normalized", True, marks=pytest.mark.slow),
    ],
)
def test_sigkill_at_any_point_then_a_good_run(
    big_sim: Simulator, db: Path, stage: str, files: bool
) -> None:
    more = () if files else NO_FILES
    # a first good run, so the killed one is incremental with history behind it
    assert extract(big_sim, db, *more).returncode == 0
    big_sim.advance(3 * 86400)
    big_sim.add_batches(3000, same_second=False)
    big_sim.reset_requests()
    if stage == "mid-pagination":
        condition = lambda: big_sim.list_requests >= 5  # noqa: E731
    else:
        condition = packages_in(db, stage)
    process = start_extract(big_sim, db, *more)
    caught = wait_for(condition, process)
    process.kill()
    process.communicate()
    assert caught, f"the run ended before reaching {stage}"
    result = extract(big_sim, db, *more)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, big_sim)
    assert_no_duplicates(db)


def test_sigterm_leaves_the_database_consistent(big_sim: Simulator, db: Path) -> None:
    process = start_extract(big_sim, db, *NO_FILES)  # stopped while paging: files play no part
    assert wait_for(lambda: big_sim.list_requests >= 10, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    result = extract(big_sim, db, *NO_FILES)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, big_sim)


def test_two_runs_started_together_one_wins_the_other_exits_3(big_sim: Simulator, db: Path) -> None:
    big_sim.inject("timeout", times=1, on="list", delay=8)  # a slow page keeps it running
    first = start_extract(big_sim, db, *NO_FILES)  # about the lock: files play no part
    assert wait_for(lambda: big_sim.faults_injected >= 1, first)
    # The second run in this process: an interpreter's start-up under load is no part of
    # the lock's give-up time, and a 5 s bound on it failed in CI.
    started = time.monotonic()
    second = extract(big_sim, db, *NO_FILES)
    gave_up_after = time.monotonic() - started
    assert second.returncode == 3, second.stderr
    assert first.poll() is None  # it did not wait for the first run to finish
    assert gave_up_after < 2 + 2.0  # give-up time plus the CLI's own setup on a loaded machine
    assert f"pid {first.pid}" in second.stderr
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert_matches_history(db, big_sim)


def test_the_key_appears_nowhere(sim: Simulator, tmp_path: Path) -> None:
    """Success, failures and faults with a recognisable key; then search every byte written."""
    db = tmp_path / "secret.duckdb"
    outputs = []
    header = "x-portkey-api-key: pk-CANARY-header-secret-99"
    for setup in (
        lambda: None,
        lambda: sim.inject("500", times=30),
        lambda: sim.inject("malformed", times=3),
        lambda: sim.inject("429", every=2, retry_after="0"),
    ):
        sim.clear_faults()
        setup()
        result = extract(
            sim, db, "--header", header, env=cli_env(RUNTIME__REQUEST_MAX_ATTEMPTS="3")
        )
        outputs.append(result.stdout + result.stderr)
        sim.advance(3600)
    wrong = extract(sim, db, env=cli_env(OPENAI_API_KEY=KEY + "-but-wrong"))
    assert wrong.returncode == 4
    outputs.append(wrong.stdout + wrong.stderr)
    secrets = (KEY, "pk-CANARY-header-secret-99")
    for text in outputs:
        assert not any(secret in text for secret in secrets)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in written) and len(written) > 3
    for path in written:
        content = path.read_bytes()
        assert not any(secret.encode() in content for secret in secrets), path


def test_a_handover_killed_between_normalize_and_load_is_finished(tmp_path: Path) -> None:
    """The state a SIGKILL left once in CI: one package both in load/ and half in normalize/."""
    from batchlens.run.pipeline import drop_handed_over_packages

    leftover = tmp_path / "normalize" / "extracted" / "1795727606.33"
    (leftover / "schema").mkdir(parents=True)  # new_jobs/ already deleted by dlt
    pending = tmp_path / "normalize" / "extracted" / "1795727700.00"
    (pending / "new_jobs").mkdir(parents=True)  # a package never normalized: must stay
    (tmp_path / "load" / "normalized" / "1795727606.33" / "new_jobs").mkdir(parents=True)
    (tmp_path / "load" / "loaded" / "1795727000.00").mkdir(parents=True)
    drop_handed_over_packages(tmp_path)
    assert not leftover.exists() and (pending / "new_jobs").is_dir()
    assert (tmp_path / "load" / "normalized" / "1795727606.33" / "new_jobs").is_dir()
    drop_handed_over_packages(tmp_path / "nothing-here")  # a first run has no folders yet
