"""A run's first requests go out before the views' check and dlt's setup, and only count
when the run would have sent them anyway.

Golden values come from the simulator (`visible()`, its request log), never from the code
under test.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest
from test_parallel import dense_open_batches

from batchlens.config import Account
from batchlens.errors import BatchlensError
from batchlens.run import extract as extraction
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import LIST_PATH, Simulator
from batchlens.storage.dialects import with_literals
from helpers import KEY, assert_matches_history, snapshot, stored_batches

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def account(sim: Simulator) -> Account:
    return Account(name="default", base_url=sim.url, api_key=KEY)


def early_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("batchlens-")]


def wait_for(condition, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_pages_are_read_while_the_views_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "e.duckdb"
    with Simulator(batches=3_000, seed=2, api_key=KEY, latency=0.02) as sim:
        run_extraction(db, account(sim), requests="none")
        sim.reset_requests()
        seen_during_check: list[int] = []
        check = extraction.check_models

        def slow_check(*args, **kwargs) -> None:
            # the old order sent nothing until the check returned: this would wait in vain
            wait_for(lambda: sim.list_requests >= 3)
            seen_during_check.append(sim.list_requests)
            check(*args, **kwargs)

        monkeypatch.setattr(extraction, "check_models", slow_check)
        numbers = run_extraction(db, account(sim), full=True, requests="none")
        assert seen_during_check and seen_during_check[0] >= 3
        assert_matches_history(db, sim)
        # taken, not read again: every list request is a different page
        afters = [q.get("after") for _, path, q, _ in sim.requests if path == LIST_PATH]
        assert len(afters) == len(set(afters)) == numbers.pages
    assert not early_threads()


def test_a_failed_views_check_stops_the_early_requests_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "f.duckdb"
    with Simulator(batches=3_000, seed=2, api_key=KEY, latency=0.05) as sim:
        run_extraction(db, account(sim), requests="none")
        before = snapshot(db)

        def failing_check(*args, **kwargs) -> None:
            wait_for(lambda: sim.list_requests > 0)
            raise BatchlensError("model open_batches: cannot be built")

        monkeypatch.setattr(extraction, "check_models", failing_check)
        sim.reset_requests()
        with pytest.raises(BatchlensError, match="cannot be built"):
            run_extraction(db, account(sim), full=True, requests="none")
        assert not early_threads()  # stopped before the run returned
        sent = len(sim.requests)
        time.sleep(0.3)
        assert len(sim.requests) == sent  # and nothing is sent after it
        assert sent < 30  # far from the 30 pages of a whole read
    assert snapshot(db) == before


def lose_state(db: Path) -> None:
    """The rows stay, dlt's state is gone: here and in the file (a hand-made mishap)."""
    with duckdb.connect(str(db)) as con:
        con.execute("delete from openai_batches._dlt_pipeline_state")
    extraction.shutil.rmtree(extraction.state_dir(db) / "pipelines")


def test_pages_started_for_a_state_the_run_lacks_are_read_again(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Simulator(batches=2_000, seed=4, api_key=KEY) as sim:
        dense_open_batches(sim)  # pages worth reading: the plan ends above the bottom
        run_extraction(db, account(sim), requests="none", build_views=False)
        lose_state(db)
        sim.advance(600)
        run_extraction(db, account(sim), requests="none", build_views=False)
        assert_matches_history(db, sim)
        # without its state the run is a first one and reads to the bottom, not to the
        # end of the pages planned from the stored statuses (a third of the history)
        with duckdb.connect(str(db), read_only=True) as con:
            last = con.execute(
                "select mode, batches_loaded from openai_batches.extractions "
                "order by finished_at desc limit 1"
            ).fetchall()
        assert last == [("full", len(sim.visible()))]
    assert not early_threads()


def test_when_the_table_and_the_state_disagree_the_state_says_what_is_retrieved(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.duckdb"
    with Simulator(batches=1_000, seed=4, api_key=KEY) as sim:
        dense_open_batches(sim)  # with open batches far below the pages worth reading
        run_extraction(db, account(sim), requests="none", build_views=False)
        open_ids = [b["id"] for b in sim.visible() if b["status"] not in TERMINAL]
        oldest_open = open_ids[-1]
        # the table says it ended; the state, which the run follows, says it is open
        with duckdb.connect(str(db)) as con:
            con.execute(
                "update openai_batches.batches set status = 'completed' where id = ?",
                [oldest_open],
            )
        sim.advance(600)
        sim.reset_requests()
        run_extraction(db, account(sim), requests="none", build_views=False)
        retrieved = [p for _, p, _, _ in sim.requests if p.startswith(LIST_PATH + "/")]
        assert f"{LIST_PATH}/{oldest_open}" in retrieved
        api_status = next(b["status"] for b in sim.visible() if b["id"] == oldest_open)
        assert stored_batches(db)[oldest_open]["status"] == api_status
    assert not early_threads()


def test_parameters_written_as_literals_read_as_bound_ones() -> None:
    values = {
        "quote": "it's",
        "injection": "x'); drop table t; --",
        "backslash": "a\\b\\'",
        "unicode": "naïve ✓",
        "number": -42,
    }
    sql = "select $quote, $injection, $backslash, $unicode, $number"
    with duckdb.connect() as con:
        con.execute("create table t (x int)")
        bound = con.execute(sql, values).fetchall()
        written = con.execute(with_literals(sql, values)).fetchall()
        assert written == bound == [tuple(values.values())]
        assert con.execute("select count(*) from t").fetchall() == [(0,)]  # still there


@pytest.mark.parametrize("value", [True, 1.5, None, b"x", "nul\x00byte"])
def test_only_whole_numbers_and_text_become_literals(value: object) -> None:
    with pytest.raises(TypeError, match=r"\$v"):
        with_literals("select $v", {"v": value})
