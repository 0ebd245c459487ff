"""An account's first load appends (nothing to merge into); every later load merges."""

from __future__ import annotations

import json
from pathlib import Path

from batchlens.config import Account
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.storage.duckdb_connection import connect
from helpers import KEY


def counts(db: Path) -> dict[str, tuple[int, int]]:
    with connect(db, read_only=True) as con:
        found = con.execute(
            "select account, count(*), count(distinct id) from openai_batches.batches group by 1"
        ).fetchall()
    return {account: (rows, ids) for account, rows, ids in found}


def disposition(db: Path) -> str:
    """How the last load wrote `batches`, as dlt's stored schema says."""
    with connect(db, read_only=True) as con:
        (schema,) = con.execute(
            "select schema from openai_batches._dlt_version order by inserted_at desc limit 1"
        ).fetchone()
    return json.loads(schema)["tables"]["batches"]["write_disposition"]


def test_first_loads_append_and_later_loads_merge_without_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    with (
        Simulator(batches=300, seed=4, api_key=KEY) as first,
        Simulator(batches=200, seed=6, api_key=KEY) as second,
    ):
        research = Account(name="research", base_url=first.url, api_key=KEY)
        platform = Account(name="platform", base_url=second.url, api_key=KEY)
        run_extraction(db, research)
        assert counts(db) == {"research": (300, 300)}
        # the table exists, but holds no row of this account: appended too
        run_extraction(db, platform)
        assert counts(db) == {"research": (300, 300), "platform": (200, 200)}
        assert disposition(db) == "append"
        first.advance(86_400)
        first.add_batches(30, same_second=False)
        run_extraction(db, research)
        assert disposition(db) == "merge"
        run_extraction(db, research, full=True)
        second.advance(86_400)
        run_extraction(db, platform, full=True)
        assert counts(db) == {"research": (330, 330), "platform": (200, 200)}
        with connect(db, read_only=True) as con:
            statuses = dict(
                con.execute(
                    "select id, status from openai_batches.batches where account = 'platform'"
                ).fetchall()
            )
        assert statuses == {b["id"]: b["status"] for b in second.visible()}
