"""Planning a run: what the destination already holds, read before the API is.

Everything here reads the destination (never the API) and ends in one `Stored` for the
source (`openai_batches.stored`): the pages to read in segments, the open batches to
retrieve early, the files already in the ledger, the hashes a `--full` run compares. Kept
apart from running the extraction (`extract.py`), so that a plan is tested on a database
alone and the source takes one parameter for all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchlens.config import Account, Parallelism
from batchlens.storage.dialects import DUCKDB, rows, with_literals
from openai_batches.files import ledger_in_destination, requests_kinds
from openai_batches.parallel import PagePlan, incremental_segments
from openai_batches.settings import (
    BATCHES_TABLE,
    DATASET_NAME,
    EXTRACTIONS_TABLE,
    TERMINAL_STATUSES,
)
from openai_batches.stored import Stored
from openai_batches.tables import HASH_COLUMN


@dataclass
class Reader:
    """Queries on the run's own connection: a dlt SQL client costs a config resolution each.

    On DuckDB the parameters are written into the SQL (`with_literals`): binding the first
    one imports pandas, which is better done while the run's first requests are in flight.
    """

    connection: Any
    dialect: str

    def __call__(self, sql: str, **params: Any) -> list[tuple]:
        if self.dialect == DUCKDB and params:
            sql, params = with_literals(sql, params), {}
        try:
            return list(rows(self.connection, self.dialect, sql, params)[1])
        finally:
            if self.dialect != DUCKDB and not self.connection.autocommit:
                self.connection.rollback()  # holds no lock while dlt loads

    def tolerant(self, sql: str, **params: Any) -> list[tuple] | None:
        """None when the query fails: no table yet, on the first run."""
        try:
            return self(sql, **params)
        except Exception:
            return None


def row_counts(read: Reader) -> dict[str, int]:
    found = read.tolerant(
        f"select account, count(*) from {DATASET_NAME}.{BATCHES_TABLE} group by 1"
    )
    return {account: count for account, count in found or []}


def _nothing_loaded(read: Reader, account: str) -> bool:
    """No row of `account` is stored: its rows can be appended, there is nothing to merge.

    Asked strictly (a failing query is an error, not "nothing"): appending onto rows that
    exist would store a batch twice.
    """
    ((tables,),) = read(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = $schema and table_name = $table",
        schema=DATASET_NAME,
        table=BATCHES_TABLE,
    )
    if not tables:
        return True
    table = f"{DATASET_NAME}.{BATCHES_TABLE}"
    ((rows_stored,),) = read(
        f"select count(*) from {table} where account = $account", account=account
    )
    return rows_stored == 0


# Providers whose list cursor is a batch id, so a segment can start at any loaded batch.
# The others (page tokens, everything in one page) read a `--full` run in one pass.
SEGMENTED_PROVIDERS = (None, "openai", "azure-openai")
# Each boundary between segments may cost one page more than one pass: segments are only
# worth it from ten pages each.
SEGMENT_MIN_BATCHES = 1_000


def _segment_starts(read: Reader, account: str, segments: int) -> list[tuple[str, int]]:
    """Loaded batches spaced evenly through the account's history, newest first.

    Empty on a first run (nothing to start from) and for a short history: the list is then
    read in one pass.
    """
    table = f"{DATASET_NAME}.{BATCHES_TABLE}"
    counted = read.tolerant(
        f"select count(*) from {table} where account = $account", account=account
    )
    total = counted[0][0] if counted else 0
    segments = min(segments, total // SEGMENT_MIN_BATCHES)
    if segments < 2:
        return []
    positions = {f"n{i}": total * i // segments + 1 for i in range(1, segments)}
    found = read(
        "select id, cast(extract(epoch from created_at) as bigint) from ("
        "select id, created_at, row_number() over (order by created_at desc, id desc) as n "
        f"from {table} where account = $account and created_at is not null) as ranked "
        f"where n in ({', '.join('$' + name for name in positions)}) order by n",
        account=account,
        **positions,
    )
    return [(str(batch_id), int(created)) for batch_id, created in found]


def _stored_hashes(read: Reader, account: str) -> dict[str, str]:
    """id -> `content_hash` of the account's stored batches (none before they had one)."""
    found = read.tolerant(
        f"select id, {HASH_COLUMN} from {DATASET_NAME}.{BATCHES_TABLE} "
        f"where account = $account and {HASH_COLUMN} is not null",
        account=account,
    )
    return {str(batch_id): str(digest) for batch_id, digest in found or []}


# the terminal statuses as a SQL list, for the queries that tell open batches apart
_TERMINAL = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))


def _incremental_plan(read: Reader, account: str, segments: int) -> PagePlan:
    """An incremental run's segments (`incremental_segments`), from the stored statuses.

    Reads the newest loaded batches until it holds the first page the run would not read
    and one more (a few thousand rows at most, in practice): never the whole history.
    """
    limit = 2_000
    while True:
        found = read.tolerant(
            "select id, cast(extract(epoch from created_at) as bigint), "
            f"status not in ({_TERMINAL}) from {DATASET_NAME}.{BATCHES_TABLE} "
            "where account = $account and created_at is not null "
            "order by created_at desc, id desc limit $limit",
            account=account,
            limit=limit,
        )
        if not found:
            return PagePlan([])
        known = [(str(i), int(c), bool(is_open)) for i, c, is_open in found]
        plan = incremental_segments(known, segments)
        if len(known) < limit or plan.retrieve_below is not None or not plan.starts:
            return plan
        limit *= 4  # every fetched page was worth reading: the plan needs more of them


def _open_below(read: Reader, account: str, second: int) -> list[str]:
    """The stored open batches created before `second`: those an incremental run's plan
    retrieves while its pages are read (`AccountProgress.open_created_before` from the
    state, which commits with these rows: the same batches)."""
    found = read.tolerant(
        f"select id from {DATASET_NAME}.{BATCHES_TABLE} where account = $account "
        f"and status not in ({_TERMINAL}) "
        "and cast(extract(epoch from created_at) as bigint) < $second",
        account=account,
        second=second,
    )
    return [str(batch_id) for (batch_id,) in found or []]


def _unfinished_walk(read: Reader, account: str) -> str | None:
    """The walk the account's last committed step left for the next run (see `Stored.walk`)."""
    found = read.tolerant(
        f"select unfinished_walk from {DATASET_NAME}.{EXTRACTIONS_TABLE} "
        "where account = $account order by finished_at desc limit 1",
        account=account,
    )
    return str(found[0][0]) if found and found[0][0] else None


def plan_account(
    read: Reader, account: Account, full: bool, requests: str, parallel: Parallelism
) -> Stored:
    """What one account's run needs to know of the destination (see `Stored`)."""
    known_files, stored_files = ledger_in_destination(
        read, DATASET_NAME, account.name, requests_kinds(requests)
    )
    walk = _unfinished_walk(read, account.name)
    # an unfinished walk goes on, whatever this run was asked: no new one is planned
    new_walk = full and walk is None
    # An incremental run's pages stand in for retrieves (each saves two or more), so they
    # are read as many at once as the retrieves are; `--full` has its own width.
    segments = parallel.full_segments if new_walk else parallel.retrieve_concurrency
    plan = PagePlan([])
    if segments > 1 and account.provider in SEGMENTED_PROVIDERS:
        if new_walk:
            plan = PagePlan(_segment_starts(read, account.name, segments))
        else:
            plan = _incremental_plan(read, account.name, segments)
    open_below = (
        _open_below(read, account.name, plan.retrieve_below)
        if plan.retrieve_below is not None
        else None
    )
    return Stored(
        known_files=frozenset(known_files),
        stored_files=tuple(stored_files),
        plan=plan,
        open_below=tuple(open_below) if open_below is not None else None,
        # a --full run reads every batch again: only those that changed are merged
        hashes=_stored_hashes(read, account.name) if full or walk == "full" else None,
        nothing_loaded=_nothing_loaded(read, account.name),
        walk=walk,
    )
