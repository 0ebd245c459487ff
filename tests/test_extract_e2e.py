"""End to end over HTTP: the CLI against the simulator, into real DuckDB files."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

from batchlens.simulator.server import Simulator
from helpers import assert_matches_history, expected_batches, extract, stored_batches, summary
from openai_batches import tables


def test_full_load_equals_the_history_in_one_request_per_page(sim: Simulator, db: Path) -> None:
    result = extract(sim, db)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, sim)
    pages = math.ceil(450 / 100)
    assert sim.list_requests == pages and sim.retrieve_requests == 0
    numbers = summary(result)
    assert numbers["pages"] == pages and numbers["requests"] == pages
    assert numbers["new"] == 450 and numbers["updated"] == 0
    open_now = sum(1 for b in sim.visible() if b["status"] not in
                   ("completed", "failed", "expired", "cancelled"))  # fmt: skip
    assert numbers["still_open"] == open_now > 0


def test_timestamps_are_utc_timestamps_and_metadata_is_json(sim: Simulator, db: Path) -> None:
    assert extract(sim, db).returncode == 0
    with duckdb.connect(str(db), read_only=True) as con:
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'openai_batches' and table_name = 'batches'"
            ).fetchall()
        )
    for column in ("created_at", "completed_at", "cancelled_at", "expired_at", "failed_at"):
        assert types[column] == "TIMESTAMP WITH TIME ZONE"
    assert types["metadata"] == "JSON"


def test_incremental_runs_catch_new_same_second_and_long_finalizing_batches(
    sim: Simulator, db: Path
) -> None:
    first = sim.add_batches(3, same_second=True)
    assert extract(sim, db).returncode == 0
    finalizing = [b["id"] for b in sim.visible() if b["status"] == "finalizing"]
    assert finalizing, "the simulated history must hold finalizing batches"

    # Same second as the previous run's newest batch: must not be lost.
    same_second = sim.add_batches(2, same_second=True)
    sim.reset_requests()
    result = extract(sim, db)
    assert result.returncode == 0, result.stderr
    assert summary(result)["new"] == 2
    assert sim.list_requests <= math.ceil(2 / 100) + 1
    assert set(first + same_second) <= stored_batches(db).keys()
    open_before = summary(result)["still_open"]

    # Days later: open batches moved on (finalizing ones completed), 130 new ones arrived.
    sim.advance(4 * 86400)
    new = sim.add_batches(130, same_second=False)
    sim.reset_requests()
    result = extract(sim, db)
    assert result.returncode == 0, result.stderr
    assert_matches_history(db, sim)
    numbers = summary(result)
    assert numbers["new"] == 130 and set(new) <= stored_batches(db).keys()
    # the bound: ceil(new/100) + 1 list requests, plus one per batch open at the last run
    # (a page that refreshes several open batches at once may stand in for their retrieves)
    assert sim.list_requests >= math.ceil(130 / 100)
    assert sim.list_requests + sim.retrieve_requests <= math.ceil(130 / 100) + 1 + open_before
    assert numbers["updated"] > 0
    stored = stored_batches(db)
    assert all(stored[i]["status"] != "finalizing" for i in finalizing)


def test_nothing_new_costs_one_page_plus_the_open_batches(sim: Simulator, db: Path) -> None:
    first = extract(sim, db)
    assert first.returncode == 0
    sim.reset_requests()
    result = extract(sim, db)
    assert result.returncode == 0
    assert sim.list_requests >= 1
    assert sim.list_requests + sim.retrieve_requests <= 1 + summary(first)["still_open"]
    assert summary(result)["new"] == 0
    assert_matches_history(db, sim)


def test_full_reconcile_rereads_every_page_without_duplicates(sim: Simulator, db: Path) -> None:
    assert extract(sim, db).returncode == 0
    sim.advance(3600)
    sim.reset_requests()
    result = extract(sim, db, "--full")
    assert result.returncode == 0, result.stderr
    assert sim.list_requests == math.ceil(450 / 100)
    with duckdb.connect(str(db), read_only=True) as con:
        rows, ids = con.execute(
            "select count(*), count(distinct id) from openai_batches.batches"
        ).fetchone()
    assert rows == ids == 450
    assert_matches_history(db, sim)


def test_full_merges_only_the_batches_the_api_changed(
    sim: Simulator, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert extract(sim, db).returncode == 0
    terminal = [b["id"] for b in sim.visible() if b["status"] in ("completed", "failed")]
    # A stored row edited behind batchlens' back shows whether --full loaded it again.
    with duckdb.connect(str(db)) as con:
        con.execute(
            "update openai_batches.batches set model = 'edited' where id = ?", [terminal[0]]
        )
    before = {b["id"]: b for b in sim.visible()}
    sim.advance(3 * 86_400)  # open batches move on; terminal ones stay as they were
    changed = {b["id"] for b in sim.visible() if b != before[b["id"]]}
    assert changed and terminal[0] not in changed
    result = extract(sim, db, "--full")
    assert result.returncode == 0, result.stderr
    stored = stored_batches(db)
    assert stored[terminal[0]]["model"] == "edited"  # sent unchanged: not merged again
    stored[terminal[0]]["model"] = before[terminal[0]]["model"]
    assert stored == expected_batches(sim.visible())  # every change is in
    # A loader that maps fields differently bumps the digest's version: all load again.
    monkeypatch.setattr(tables, "HASH_VERSION", b"test")
    assert extract(sim, db, "--full").returncode == 0
    assert_matches_history(db, sim)


def test_two_database_files_never_share_state(sim: Simulator, tmp_path: Path) -> None:
    first, second = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    assert extract(sim, first).returncode == 0
    sim.reset_requests()
    assert extract(sim, second).returncode == 0
    assert sim.list_requests == math.ceil(450 / 100)  # b.duckdb started from scratch
    assert_matches_history(first, sim)
    assert_matches_history(second, sim)


def test_state_lives_in_the_database_file(sim: Simulator, tmp_path: Path) -> None:
    """Move the file without its working folder: dlt restores the state from it."""
    db = tmp_path / "a.duckdb"
    assert extract(sim, db).returncode == 0
    moved = tmp_path / "moved"
    moved.mkdir()
    db.rename(moved / "a.duckdb")
    sim.reset_requests()
    assert extract(sim, moved / "a.duckdb").returncode == 0
    assert sim.list_requests == 1


def test_a_new_api_field_becomes_a_column(tmp_path: Path) -> None:
    batch = {
        "id": "batch_new_field",
        "object": "batch",
        "endpoint": "/v1/responses",
        "status": "validating",
        "created_at": 1_767_000_000,
        "expires_at": 1_767_086_400,
        "priority_tier": "flex",
    }
    with Simulator(history=[batch], api_key="sk-test-CANARY-7f3a9c51e2d8-batchlens") as server:
        db = tmp_path / "x.duckdb"
        result = extract(server, db)
        assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select priority_tier from openai_batches.batches").fetchall() == [
            ("flex",)
        ]
