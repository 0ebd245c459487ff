"""The SQL models over a generated history, checked against what the simulated API shows.

`sim.visible()` is the truth: every batch as the API returns it at the simulated clock.
After each extraction (the first, then one after the clock moved and batches changed
status), the views must agree with it on counts by status, active counts, open batches and
error rows, and the hourly series must end at today's active count.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from batchlens.config import Account
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.views.build import build_models

API_KEY = "sk-test-simulated-models-0001"
TERMINAL = {"completed", "failed", "expired", "cancelled"}
ACTIVE = {"validating", "in_progress", "finalizing"}
OPEN_STATUSES = ("validating", "in_progress", "finalizing", "cancelling")


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as connection:
        connection.execute("set TimeZone = 'UTC'")
        return connection.execute(sql).fetchall()


def ts(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def check_against_api(db: Path, visible: list[dict[str, Any]]) -> None:
    by_status = Counter(b["status"] for b in visible)
    assert dict(
        query(db, "select status, count(*) from openai_batches.batch_facts group by status")
    ) == dict(by_status)

    active = {
        status: (count, oldest)
        for status, count, oldest in query(
            db, "select status, batches, oldest_created_at from openai_batches.active_batches"
        )
    }
    for status in OPEN_STATUSES:
        members = [b for b in visible if b["status"] == status]
        oldest = ts(min((b["created_at"] for b in members), default=None))
        assert active[status] == (len(members), oldest), status

    open_ids = {b["id"]: b for b in visible if b["status"] not in TERMINAL}
    rows = query(db, "select batch_id, status, status_since from openai_batches.open_batches")
    assert {batch_id for batch_id, _, _ in rows} == set(open_ids)
    for batch_id, status, since in rows:
        batch = open_ids[batch_id]
        field = {"validating": "created_at"}.get(status, f"{status}_at")
        assert (status, since) == (batch["status"], ts(batch[field]))

    errors = Counter(
        (b["id"], e["code"], e["message"], e["line"])
        for b in visible
        for e in (b.get("errors") or {}).get("data") or []
    )
    assert errors, "the generated history should contain errors"
    stored = Counter(
        query(db, "select batch_id, code, message, line from openai_batches.batch_errors")
    )
    assert stored == errors
    counts = dict(query(db, "select batch_id, error_count from openai_batches.batch_facts"))
    for b in visible:
        assert counts[b["id"]] == len((b.get("errors") or {}).get("data") or []), b["id"]

    # terminal counts per UTC creation day add up to the same totals
    (terminal,) = query(db, "select sum(terminal) from openai_batches.failure_rates_daily")[0]
    assert terminal == sum(by_status[s] for s in TERMINAL)
    (completed,) = query(db, "select sum(batches) from openai_batches.duration_stats_daily")[0]
    assert completed == by_status["completed"]

    # "as of" is after the simulated clock here, so the last hour counts every active batch
    (last,) = query(
        db,
        "select active from openai_batches.active_batches_hourly order by hour desc limit 1",
    )[0]
    assert last == sum(by_status[s] for s in ACTIVE)


def test_hourly_matches_a_brute_force_count_at_sampled_hours(tmp_path: Path) -> None:
    db = tmp_path / "hourly.duckdb"
    with Simulator(batches=1_500, seed=5, api_key=API_KEY) as sim:
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=API_KEY))
        visible = sim.visible()
    build_models(db)
    series = dict(query(db, "select hour, active from openai_batches.active_batches_hourly"))
    spans = []
    for b in visible:
        ends = [b[k] for k in ("completed_at", "failed_at", "expired_at", "cancelling_at",
                               "cancelled_at") if b[k] is not None]  # fmt: skip
        active = b["status"] in ACTIVE
        spans.append((b["created_at"], None if active or not ends else min(ends)))
    hours = sorted(series)
    assert hours[0].timestamp() == min(b["created_at"] for b in visible) // 3600 * 3600
    assert all((b - a).total_seconds() == 3600 for a, b in itertools.pairwise(hours))
    for hour in hours[:: max(1, len(hours) // 300)]:
        mark = hour.timestamp()
        expected = sum(1 for start, end in spans if start <= mark and (end is None or end > mark))
        assert series[hour] == expected, hour
    assert max(series.values()) > 5  # a history busy enough to mean something


@pytest.mark.parametrize("seed", [7, pytest.param(23, marks=pytest.mark.slow)])  # 2nd in CI
def test_views_agree_with_the_api_after_each_extraction(tmp_path: Path, seed: int) -> None:
    db = tmp_path / "sim.duckdb"
    with Simulator(batches=1_200, seed=seed, api_key=API_KEY) as sim:
        account = Account(name="default", base_url=sim.url, api_key=API_KEY)
        run_extraction(db, account)
        build_models(db)
        check_against_api(db, sim.visible())

        # batches finish, new ones arrive; the models are rebuilt over the merged table
        before = Counter(b["status"] for b in sim.visible())
        sim.advance(6 * 3600)
        sim.add_batches(25, same_second=False)
        sim.add_batches(3, scenario="failed_validation")
        run_extraction(db, account)
        build_models(db)
        visible = sim.visible()
        assert Counter(b["status"] for b in visible) != before
        check_against_api(db, visible)
