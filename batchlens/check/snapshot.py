"""What `batchlens check` reads: plain rows from the views, never from the API.

Every number here is a view's own (`open_batches`, `active_batches`, `batch_lifecycle`,
`stg_extractions`, and `batch_files` / `costs_daily` where an extraction made them); the
queries only filter and add up counts, as `report` does. The rules that judge the rows are
in `check.py`. A DuckDB file is opened read-only; while an extraction is writing it (DuckDB
allows one writer and no readers beside it) the check waits a few seconds for it to end
and then says who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from batchlens.check.rules import FILE_HORIZON_HOURS, FILE_RETENTION_HOURS, Snapshot
from batchlens.errors import BatchlensError, classify
from batchlens.storage.dialects import DUCKDB, execute, rows
from batchlens.storage.lock import read_holder
from batchlens.storage.target import Target
from batchlens.views.build import SCHEMA

REQUIRED_VIEWS = (
    "as_of",
    "open_batches",
    "active_batches",
    "batch_lifecycle",
    "stg_extractions",
)


class CheckUnavailable(BatchlensError):
    """The check cannot read the database: UNKNOWN (exit 3), never a guess."""


AS_OF = f"select as_of from {SCHEMA}.as_of"

ACCOUNTS = f"""
select account from {SCHEMA}.batch_lifecycle
union
select account from {SCHEMA}.stg_extractions
order by account
"""

OPEN_BATCHES = f"""
select
    open_batches.batch_id,
    open_batches.account,
    open_batches.status,
    open_batches.status_since,
    open_batches.hours_in_status,
    open_batches.expires_at,
    open_batches.is_overdue,
    (epoch(open_batches.expires_at) - epoch(as_of.as_of)) / 3600 as hours_to_expiry
from {SCHEMA}.open_batches as open_batches
cross join {SCHEMA}.as_of as as_of
order by open_batches.account, open_batches.hours_in_status desc, open_batches.batch_id
"""

ACTIVE = f"""
select
    active.account,
    active.status,
    active.batches,
    epoch(as_of.as_of) - epoch(active.oldest_created_at) as oldest_age_s
from {SCHEMA}.active_batches as active
cross join {SCHEMA}.as_of as as_of
order by active.account, active.status
"""

# Terminal batches created in the window; rates are sums over sums, as everywhere.
RATES = f"""
with

window_batches as (
    select facts.*
    from {SCHEMA}.batch_lifecycle as facts
    cross join {SCHEMA}.as_of as as_of
    where
        facts.is_terminal
        and epoch(facts.created_at) > epoch(as_of.as_of) - $window_s
),

totals as (
    select
        account,
        count(*) as terminal,
        count(*) filter (where status = 'failed') as failed,
        cast(coalesce(sum(request_total), 0) as bigint) as request_total,
        cast(coalesce(sum(request_failed), 0) as bigint) as request_failed
    from window_batches
    group by account
)

select
    *,
    cast(failed as double) / nullif(terminal, 0) as failure_rate,
    cast(request_failed as double) / nullif(request_total, 0) as request_failure_rate
from totals
order by account
"""

LAST_EXTRACTIONS = f"""
select
    account,
    max(started_at) as last_extraction_at
from {SCHEMA}.stg_extractions
group by account
"""

# A file the ledger has no row for was never downloaded (nor found gone).
ERROR_FILES = f"""
select
    facts.batch_id,
    facts.account,
    facts.status,
    batches.error_file_id,
    (epoch(facts.ended_at) + $retention_s - epoch(as_of.as_of)) / 3600 as hours_to_deletion
from {SCHEMA}.batch_lifecycle as facts
inner join {SCHEMA}.stg_batches as batches
    on facts.account = batches.account and facts.batch_id = batches.batch_id
cross join {SCHEMA}.as_of as as_of
left join {SCHEMA}.batch_files as files
    on batches.account = files.account and batches.error_file_id = files.file_id
where
    facts.is_terminal
    and batches.error_file_id is not null
    and files.file_id is null
    and epoch(facts.ended_at) + $retention_s > epoch(as_of.as_of)
    and epoch(facts.ended_at) + $retention_s <= epoch(as_of.as_of) + $horizon_s
order by facts.account, hours_to_deletion, facts.batch_id
"""

# The UTC day of "as of": the day the latest extraction saw, like every view's "now".
DAILY_COSTS = f"""
select
    daily.account,
    coalesce(sum(daily.cost_usd), 0) as cost_usd
from {SCHEMA}.costs_daily as daily
cross join {SCHEMA}.as_of as as_of
where daily.day = cast(make_timestamp(epoch_us(as_of.as_of)) as date)
group by daily.account
order by daily.account
"""


def read_snapshot(connection: Any, dialect: str, label: str, windows: set[float]) -> Snapshot:
    """The rows every rule needs, in `dialect`; `windows` are the failure-rate windows (h)."""
    execute(connection, dialect, "set TimeZone = 'UTC'")
    present = _relations(connection, dialect)
    missing = sorted(set(REQUIRED_VIEWS) - present)
    if missing:
        hint = f"batchlens models --db {label}" if dialect == DUCKDB else "batchlens models"
        raise CheckUnavailable(
            f"the database {label} has no batchlens views ({', '.join(missing)} missing); "
            f"run `{hint}` after an extraction"
        )
    (as_of,) = _dicts(connection, dialect, AS_OF)
    snapshot = Snapshot(
        as_of=as_of["as_of"],
        accounts=[row["account"] for row in _dicts(connection, dialect, ACCOUNTS)],
        open_batches=_dicts(connection, dialect, OPEN_BATCHES),
        active=_dicts(connection, dialect, ACTIVE),
        rates={
            hours: _dicts(connection, dialect, RATES, window_s=hours * 3600)
            for hours in sorted(windows)
        },
        last_extractions={
            row["account"]: row["last_extraction_at"]
            for row in _dicts(connection, dialect, LAST_EXTRACTIONS)
        },
    )
    if {"batch_files", "stg_batches"} <= present:
        snapshot.error_files = _dicts(
            connection,
            dialect,
            ERROR_FILES,
            retention_s=FILE_RETENTION_HOURS * 3600,
            horizon_s=FILE_HORIZON_HOURS * 3600,
        )
    if "costs_daily" in present:
        snapshot.daily_costs = _dicts(connection, dialect, DAILY_COSTS)
    return snapshot


def _relations(connection: Any, dialect: str) -> set[str]:
    """Tables and views of the schema: the optional rules light up when theirs exist."""
    _, found = rows(
        connection,
        dialect,
        "select table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema = $schema",
        {"schema": SCHEMA},
    )
    return {name for (name,) in found}


def _dicts(connection: Any, dialect: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    names, found = rows(connection, dialect, sql, params)
    return [dict(zip(names, row, strict=True)) for row in found]


@contextlib.contextmanager
def open_read_only(target: Target, wait_seconds: float) -> Iterator[Any]:
    """A read-only connection to `target`; CheckUnavailable when there is none to be had."""
    if target.db is not None:
        connection = _open_duckdb(target, wait_seconds)
    else:
        try:
            connection = target.connect(read_only=True)
        except Exception as exc:
            known = classify(exc)
            message = known[1] if known else f"{type(exc).__name__}: {_first_line(exc)}"
            raise CheckUnavailable(f"cannot read {target.label}: {message}") from None
    with contextlib.closing(connection):
        yield connection


def _open_duckdb(target: Target, wait_seconds: float) -> Any:
    """Waits up to `wait_seconds` for a writer to let go: an extraction takes seconds."""
    assert target.db is not None
    target.require_database()
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return target.connect(read_only=True)
        except duckdb.Error as exc:
            known = classify(exc)
            if known is None:
                raise CheckUnavailable(
                    f"cannot open the database {target.db}: {_first_line(exc)}"
                ) from None
            if time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            holder = extraction_holder(target.state_dir() / "lock")
            if holder:
                raise CheckUnavailable(
                    f"an extraction is writing the database ({holder}) and did not finish "
                    f"within {wait_seconds:g} s; DuckDB allows no reader beside a writer. "
                    "Run check after extract (or raise --wait)"
                ) from None
            raise CheckUnavailable(known[1]) from None


def extraction_holder(lock_file: Path) -> str | None:
    """Who holds the extraction lock (see lock.py), without taking it; None when nobody.

    A shared probe that is let go at once: an extraction starting meanwhile retries for a
    second (lock.WAIT_SECONDS), far longer than the probe lasts.
    """
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
