"""`batchlens report`: the questions people ask every morning, answered from the views.

Nothing here defines a metric. Each section is a query over the views of `sql/marts`
(see docs/metrics.md); where a section spans several days it adds up the daily counts and
divides the sums, because an average of daily rates would weigh a quiet day like a busy one.
Every window is anchored at "as of" (the latest extraction), never at the clock, so the
same database gives the same report whenever it is read.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from .database import connect
from .dialects import DUCKDB, execute, rows
from .errors import UsageError, classify
from .models import SCHEMA

FORMATS = ("table", "json")
WINDOWS = (1, 7, 30)  # days; `--days N` adds N and drops the longer ones
OPEN_BATCHES_SHOWN = 20  # in the table; JSON lists them all
ERROR_CODES_SHOWN = 10
WIDTH = 120
REQUIRED_VIEWS = (
    "as_of",
    "active_batches",
    "failure_rates_daily",
    "batch_facts",
    "open_batches",
    "batch_errors",
    "failure_rates_trailing",
    "statuses",
)

AS_OF = f"""
select
    as_of,
    as_of_source,
    cast(as_of at time zone 'UTC' as date) as as_of_day
from {SCHEMA}.as_of
"""

# Every open status, cancelling included: the table is titled "Open now", not "Active now"
ACTIVE = f"""
select
    account,
    status,
    is_active,
    batches,
    oldest_created_at
from {SCHEMA}.active_batches
order by account, lifecycle_order
"""

# A window longer than the history is the whole history: its longest row.
WINDOW_RATES = f"""
with

windows as (
    select unnest($windows) as days
),

longest as (
    select
        account,
        max(days) as days
    from {SCHEMA}.failure_rates_trailing
    group by account
)

select
    windows.days,
    rates.account,
    rates.terminal,
    rates.completed,
    rates.failed,
    rates.expired,
    rates.cancelled,
    rates.request_total,
    rates.request_failed,
    rates.failure_rate,
    rates.expired_rate,
    rates.request_failure_rate
from windows
cross join longest
inner join {SCHEMA}.failure_rates_trailing as rates
    on
        longest.account = rates.account
        and least(windows.days, longest.days) = rates.days
order by windows.days, rates.account
"""

# Quantiles cannot be added up from daily quantiles: they come from the batches themselves.
DURATIONS = f"""
select
    facts.account,
    facts.endpoint,
    facts.model,
    count(*) as batches,
    quantile_cont(facts.duration_s, 0.5) as duration_p50_s,
    quantile_cont(facts.duration_s, 0.9) as duration_p90_s
from {SCHEMA}.batch_facts as facts
cross join (
    select cast(as_of at time zone 'UTC' as date) as as_of_day from {SCHEMA}.as_of
) as as_of
where
    facts.status = 'completed'
    and facts.created_day > as_of.as_of_day - $days
    and facts.created_day <= as_of.as_of_day
group by facts.account, facts.endpoint, facts.model
order by batches desc, facts.account, facts.endpoint, facts.model nulls last
"""

OPEN_BATCHES = f"""
select
    batch_id,
    account,
    status,
    created_at,
    status_since,
    hours_in_status,
    expires_at,
    is_overdue,
    is_stalled and status = 'finalizing' as is_long_finalizing
from {SCHEMA}.open_batches
order by is_overdue desc, is_long_finalizing desc, hours_in_status desc, batch_id
"""

OPEN_SUMMARY = f"""
select
    count(*) as total,
    count(*) filter (where is_overdue) as overdue,
    count(*) filter (where is_stalled and status = 'finalizing') as long_finalizing
from {SCHEMA}.open_batches
"""

# The threshold behind `open_batches.is_stalled` for finalizing, for the table's title
LONG_FINALIZING = f"""
select stuck_after_hours from {SCHEMA}.statuses where status = 'finalizing'
"""

ERROR_CODES = f"""
select
    errors.code,
    count(*) as entries,
    count(distinct errors.account || '/' || errors.batch_id) as batches,
    arg_max(errors.message, errors.created_at) as example_message
from {SCHEMA}.batch_errors as errors
cross join (
    select cast(as_of at time zone 'UTC' as date) as as_of_day from {SCHEMA}.as_of
) as as_of
where
    cast(errors.created_at at time zone 'UTC' as date) > as_of.as_of_day - $days
    and cast(errors.created_at at time zone 'UTC' as date) <= as_of.as_of_day
group by errors.code
order by entries desc, errors.code nulls last
limit $limit
"""


def report(db: Path, fmt: str = "table", days: int = 30) -> str:
    """The report as text: rich tables for a terminal (`table`) or one JSON document.

    Raises UsageError for a missing database, a file that is not one, missing views
    (models never built) or bad arguments: each is something the user can fix.
    """
    _check_arguments(fmt, days)
    data = collect(db, days)
    return to_json(data) if fmt == "json" else to_table(data)


def _check_arguments(fmt: str, days: int) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if days < 1:
        raise UsageError(f"--days must be at least 1, got {days}")


def windows_for(days: int) -> list[int]:
    """1, 7 and 30 days, cut at `days`, plus `days` itself: --days sets the horizon."""
    return sorted({window for window in WINDOWS if window < days} | {days})


def collect(db: Path, days: int) -> dict[str, Any]:
    """Every section as plain rows (dicts), read in one read-only session of a DuckDB file."""
    db = Path(db)
    if not db.is_file():
        raise UsageError(f"the database does not exist: {db}; run `batchlens extract` first")
    try:
        connection = connect(db, read_only=True)
    except duckdb.Error as exc:
        if classify(exc):  # held by a writer: the CLI reports it with its own exit code
            raise
        first_line = str(exc).splitlines()[0]
        raise UsageError(f"cannot open the database {db}: {first_line}") from None
    with connection:
        return collect_from(connection, DUCKDB, days, str(db))


def report_from(
    connection: Any, dialect: str, label: str, fmt: str = "table", days: int = 30
) -> str:
    """`report` over an open connection (DuckDB's or psycopg2's); `label` names the database."""
    _check_arguments(fmt, days)
    data = collect_from(connection, dialect, days, label)
    return to_json(data) if fmt == "json" else to_table(data)


def collect_from(connection: Any, dialect: str, days: int, label: str) -> dict[str, Any]:
    """Every section as plain rows (dicts), from an open connection in `dialect`.

    Sets the session's TimeZone to UTC, so that timestamps come back in UTC.
    """
    execute(connection, dialect, "set TimeZone = 'UTC'")
    _require_views(connection, dialect, label)
    as_of = _rows(connection, dialect, AS_OF)[0]
    (open_summary,) = _rows(connection, dialect, OPEN_SUMMARY)
    (threshold,) = _rows(connection, dialect, LONG_FINALIZING)
    return {
        "database": label,
        "as_of": as_of["as_of"],
        "as_of_source": as_of["as_of_source"],
        "days": days,
        "long_finalizing_hours": threshold["stuck_after_hours"],
        "active": _rows(connection, dialect, ACTIVE),
        "windows": _rows(connection, dialect, WINDOW_RATES, windows=windows_for(days)),
        "durations": _rows(connection, dialect, DURATIONS, days=days),
        "open_batches": {
            **open_summary,
            "batches": _rows(connection, dialect, OPEN_BATCHES),
        },
        "error_codes": _rows(connection, dialect, ERROR_CODES, days=days, limit=ERROR_CODES_SHOWN),
    }


def _require_views(connection: Any, dialect: str, label: str) -> None:
    _, found = rows(
        connection,
        dialect,
        "select table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema = $schema "
        "and table_type = 'VIEW'",
        {"schema": SCHEMA},
    )
    missing = sorted(set(REQUIRED_VIEWS) - {name for (name,) in found})
    if missing:
        hint = f"batchlens models --db {label}" if dialect == DUCKDB else "batchlens models"
        raise UsageError(
            f"the database {label} has no batchlens views ({', '.join(missing)} missing); "
            f"run `{hint}` after an extraction"
        )


def _rows(connection: Any, dialect: str, sql: str, **params: Any) -> list[dict]:
    names, found = rows(connection, dialect, sql, params)
    return [dict(zip(names, row, strict=True)) for row in found]


# --- JSON -----------------------------------------------------------------------------------


def to_json(data: dict[str, Any]) -> str:
    """Stable keys, ISO 8601 UTC timestamps, null for a rate without a denominator."""
    return json.dumps(data, default=_json_value, indent=2, allow_nan=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# --- terminal -------------------------------------------------------------------------------


def to_table(data: dict[str, Any]) -> str:
    console = Console(file=io.StringIO(), width=WIDTH, record=True, color_system=None)
    days = data["days"]
    source = "" if data["as_of_source"] == "extraction" else " (no extraction recorded)"
    console.print(f"batchlens report for {data['database']}")
    console.print(
        f"as of {_when(data['as_of'])} UTC{source}; times are UTC, windows are UTC days "
        "up to that day"
    )

    active = _table("Open now", ["account", "status", "batches", "oldest created"])
    for row in data["active"]:
        active.add_row(
            row["account"], row["status"], str(row["batches"]), _when(row["oldest_created_at"])
        )
    _show(console, active)

    windows = _table(
        "Terminal batches by window",
        ["last", "account", "terminal", "completed", "failed", "expired", "cancelled",
         "failure", "expired rate", "request failure"],
    )  # fmt: skip
    for row in data["windows"]:
        windows.add_row(
            f"{row['days']} d",
            row["account"],
            *(str(row[key]) for key in ("terminal", "completed", "failed", "expired")),
            str(row["cancelled"]),
            _rate(row["failure_rate"]),
            _rate(row["expired_rate"]),
            _rate(row["request_failure_rate"]),
        )
    _show(console, windows)

    durations = _table(
        f"Completed batches, last {days} d: duration (in_progress to completed)",
        ["account", "endpoint", "model", "batches", "p50", "p90"],
    )
    for row in data["durations"]:
        durations.add_row(
            row["account"],
            row["endpoint"] or "-",
            row["model"] or "(none)",
            str(row["batches"]),
            _seconds(row["duration_p50_s"]),
            _seconds(row["duration_p90_s"]),
        )
    _show(console, durations)

    open_batches = data["open_batches"]
    shown = open_batches["batches"][:OPEN_BATCHES_SHOWN]
    more = open_batches["total"] - len(shown)
    title = (
        f"Open batches: {open_batches['total']}, {open_batches['overdue']} overdue, "
        f"{open_batches['long_finalizing']} finalizing > {data['long_finalizing_hours']:g} h"
        + (f" ({more} more not shown)" if more > 0 else "")
    )
    table = _table(title, ["flag", "batch", "account", "status", "since", "hours", "expires"])
    for row in shown:
        table.add_row(
            _flags(row),
            row["batch_id"],
            row["account"],
            row["status"],
            _when(row["status_since"]),
            f"{row['hours_in_status']:.1f}",
            _when(row["expires_at"]),
        )
    _show(console, table)

    errors = _table(
        f"Most common error codes, last {days} d",
        ["code", "entries", "batches", "example message"],
    )
    for row in data["error_codes"]:
        errors.add_row(
            row["code"] or "(none)", str(row["entries"]), str(row["batches"]),
            row["example_message"] or "",
        )  # fmt: skip
    _show(console, errors)
    return console.export_text()


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, caption_justify="left")
    for column in columns:
        numeric = column in {"batches", "terminal", "completed", "failed", "expired",
                             "cancelled", "entries", "hours", "p50", "p90"}  # fmt: skip
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column == "batch")
    return table


def _flags(row: dict[str, Any]) -> str:
    flags = [name for name, on in (("OVERDUE", row["is_overdue"]),
                                   ("STUCK", row["is_long_finalizing"])) if on]  # fmt: skip
    return " ".join(flags)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _rate(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    """Durations as people say them: 45s, 12m 05s, 3h 20m, 2d 04h."""
    if value is None:
        return "-"
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3_600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86_400:
        return f"{seconds // 3_600}h {seconds % 3_600 // 60:02d}m"
    return f"{seconds // 86_400}d {seconds % 86_400 // 3_600:02d}h"


def _show(console: Console, table: Table) -> None:
    if not table.row_count:
        table.caption = "(none)"
    console.print(table)
    console.print()
