"""What `batchlens check` reads: plain rows from the views, never from the API.

Every number here is a view's own (`open_batches`, `active_batches`, `failure_rates`,
`statuses`, `as_of`, `stg_extractions`, and `batch_files` / `costs_daily` where an
extraction made them), selected by the queries of `sql/queries/check/`: which batches are
stalled (at the statuses' thresholds, or at `stuck_hours` where it overrides them) and the
rates of a window are decided there, never here. The rules that judge the rows are in
`rules.py`. A DuckDB file is opened read-only; while an extraction is writing it (DuckDB
allows one writer and no readers beside it) the check waits a few seconds for it to end
and then says who holds it, as every reader does (`batchlens.storage.readers`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from typing import Any

from batchlens.check.rules import (
    FILE_HORIZON_HOURS,
    FILE_RETENTION_HOURS,
    PENDING_FILE_HOURS,
    Settings,
    Snapshot,
)
from batchlens.errors import BatchlensError, classify, first_line
from batchlens.storage.dialects import DUCKDB, execute
from batchlens.storage.readers import open_duckdb_reader
from batchlens.storage.target import Target
from batchlens.views.build import SCHEMA
from batchlens.views.queries import read

REQUIRED_VIEWS = (
    "as_of",
    "open_batches",
    "active_batches",
    "batch_lifecycle",
    "failure_rates",
    "statuses",
    "stg_extractions",
)


class CheckUnavailable(BatchlensError):
    """The check cannot read the database: UNKNOWN (exit 3), never a guess."""


def read_snapshot(
    connection: Any, dialect: str, label: str, settings: Settings | Collection[float]
) -> Snapshot:
    """The rows every rule needs, in `dialect`, for the check's `settings`: their windows
    (hours) of the failure rates and their `stuck_hours` (each is a parameter of a query).

    A collection of window hours instead of the settings reads the statuses' own stuck
    thresholds only; a rule then refuses an account that overrides them.
    """
    if isinstance(settings, Settings):
        windows, stuck_hours = settings.windows(), settings.stuck_thresholds()
    else:
        windows, stuck_hours = set(settings), {None}
    # a session statement, not a query: every timestamp comes back in UTC
    execute(connection, dialect, "set TimeZone = 'UTC'")
    present = _relations(connection, dialect)
    missing = sorted(set(REQUIRED_VIEWS) - present)
    if missing:
        hint = f"batchlens models --db {label}" if dialect == DUCKDB else "batchlens models"
        raise CheckUnavailable(
            f"the database {label} has no batchlens views ({', '.join(missing)} missing); "
            f"run `{hint}` after an extraction"
        )

    def query(name: str, **params: Any) -> list[dict[str, Any]]:
        return read(connection, dialect, f"check/{name}", **params)

    (as_of,) = query("as_of")
    snapshot = Snapshot(
        as_of=as_of["as_of"],
        accounts=[row["account"] for row in query("accounts")],
        open_batches=query("open_batches"),
        active=query("active"),
        rates={hours: query("rates", window_s=hours * 3600) for hours in sorted(windows)},
        last_extractions={
            row["account"]: row["last_extraction_at"] for row in query("last_extractions")
        },
        stalled={hours: query("stalled", stuck_hours=hours) for hours in stuck_hours},
        open_statuses=[row["status"] for row in query("open_statuses")],
    )
    if {"batch_files", "stg_batches"} <= present:
        snapshot.error_files = query(
            "error_files",
            retention_s=FILE_RETENTION_HOURS * 3600,
            horizon_s=FILE_HORIZON_HOURS * 3600,
        )
    ledger = {row["column_name"] for row in query("ledger_columns", schema=SCHEMA)}
    if "first_failed_at" in ledger:
        snapshot.pending_files = query("pending_files", pending_s=PENDING_FILE_HOURS * 3600)
    if "costs_daily" in present:
        snapshot.daily_costs = query("daily_costs")
    return snapshot


def _relations(connection: Any, dialect: str) -> set[str]:
    """Tables and views of the schema: the optional rules light up when theirs exist."""
    return {
        row["table_name"] for row in read(connection, dialect, "check/relations", schema=SCHEMA)
    }


@contextlib.contextmanager
def open_read_only(target: Target, wait_seconds: float) -> Iterator[Any]:
    """A read-only connection to `target`, after an extraction writing a DuckDB file
    (`wait_seconds` at most); a known failure says what it is, any other is CheckUnavailable."""
    try:
        if target.db is not None:
            connection = open_duckdb_reader(target, wait_seconds)
        else:
            connection = target.connect(read_only=True)
    except BatchlensError:
        raise
    except Exception as exc:
        known = classify(exc)
        message = known[1] if known else f"{type(exc).__name__}: {first_line(exc)}"
        raise CheckUnavailable(f"cannot read {target.label}: {message}") from None
    with contextlib.closing(connection):
        yield connection
