"""The `statuses` view is the one list of status words, sets, labels and colours.

The dlt source keeps its own `STATUSES` and `TERMINAL_STATUSES` (it stands alone and cannot
read the views): they must say what the view says. Everything else reads the view; the
view's own SQL reads no table, so it runs here in a scratch database, without a load.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from openai_batches.settings import STATUSES, TERMINAL_STATUSES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def statuses() -> list[dict]:
    sql = (ROOT / "sql" / "marts" / "statuses.sql").read_text()
    with duckdb.connect() as connection:
        cursor = connection.execute(f"select * from ({sql}) order by lifecycle_order")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_the_source_lists_the_views_statuses(statuses: list[dict]) -> None:
    assert set(STATUSES) == {row["status"] for row in statuses}
    assert len(STATUSES) == len(statuses)
    assert set(TERMINAL_STATUSES) == {row["status"] for row in statuses if row["is_terminal"]}


def test_the_sets_partition_the_statuses(statuses: list[dict]) -> None:
    for row in statuses:
        assert row["is_open"] is not row["is_terminal"]
        assert not row["is_active"] or row["is_open"]
    assert [row["lifecycle_order"] for row in statuses] == list(range(1, len(statuses) + 1))
    # only a status with a threshold can stall (open_batches.is_stalled)
    assert {
        row["status"]: row["stuck_after_hours"] for row in statuses if row["stuck_after_hours"]
    } == {"finalizing": 6.0}


def test_every_status_has_a_label_and_a_colour_of_its_own(statuses: list[dict]) -> None:
    for row in statuses:
        assert row["label"] == row["status"].replace("_", " ")
        assert re.fullmatch(r"#[0-9A-F]{6}", row["colour"]), row
    assert len({row["colour"] for row in statuses}) == len(statuses)


def test_the_notebooks_read_the_view() -> None:
    from batchlens.notebooks import helper

    frame = helper.statuses()
    assert list(helper.STATUSES) == list(frame["status"])
    assert dict(zip(frame["status"], frame["colour"], strict=True)) == helper.STATUS_COLORS
    assert helper.STATUS_LABELS["in_progress"] == "in progress"
