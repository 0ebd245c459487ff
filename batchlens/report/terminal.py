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
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchlens.errors import UsageError, classify, require_database
from batchlens.report import requests as report_requests
from batchlens.report.by_label import by_metadata, metadata_key
from batchlens.report.format import duration, flags, rate, when
from batchlens.report.spend import collect_spend, show_spend
from batchlens.storage.dialects import DUCKDB, dict_rows, execute, rows
from batchlens.storage.duckdb_connection import connect
from batchlens.views.build import SCHEMA
from openai_batches.settings import EXTRACTIONS_TABLE

FORMATS = ("table", "json")
WINDOWS = (1, 7, 30)  # days; `--days N` adds N and drops the longer ones
OPEN_BATCHES_SHOWN = 20  # stuck or overdue ones, in the table; JSON lists them all
OTHER_OPEN_SHOWN = 5  # the oldest of the rest: they need no attention yet
ERROR_CODES_SHOWN = 10
WIDTH = 120
REQUIRED_VIEWS = (
    "as_of",
    "active_batches",
    "failure_rates_daily",
    "batch_facts",
    "batch_lifecycle",
    "open_batches",
    "batch_errors",
    "costs_daily",
    "batch_costs",
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
from {SCHEMA}.batch_lifecycle as facts
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

# What needs attention first: stuck in finalizing, then overdue, then the oldest.
OPEN_BATCHES = f"""
select
    open_batch.batch_id,
    open_batch.account,
    open_batch.status,
    facts.endpoint,
    facts.model,
    open_batch.created_at,
    open_batch.status_since,
    open_batch.hours_in_status,
    open_batch.expires_at,
    open_batch.is_overdue,
    open_batch.is_stalled and open_batch.status = 'finalizing' as is_long_finalizing
from {SCHEMA}.open_batches as open_batch
inner join {SCHEMA}.batch_lifecycle as facts
    on open_batch.account = facts.account and open_batch.batch_id = facts.batch_id
order by
    is_long_finalizing desc,
    open_batch.is_overdue desc,
    open_batch.created_at asc,
    open_batch.batch_id asc
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
    check_arguments(fmt, days)
    data = collect(db, days)
    return to_json(data) if fmt == "json" else to_table(data)


def check_arguments(fmt: str, days: int) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if days < 1:
        raise UsageError(f"--days must be at least 1, got {days}")


def windows_for(days: int) -> list[int]:
    """1, 7 and 30 days, cut at `days`, plus `days` itself: --days sets the horizon."""
    return sorted({window for window in WINDOWS if window < days} | {days})


def read_only(db: Path) -> duckdb.DuckDBPyConnection:
    """A read-only session of a DuckDB file; a missing or unreadable file is a usage error."""
    db = Path(db)
    require_database(db)
    try:
        return connect(db, read_only=True)
    except duckdb.Error as exc:
        if classify(exc):  # held by a writer: the CLI reports it with its own exit code
            raise
        first_line = str(exc).splitlines()[0]
        raise UsageError(f"cannot open the database {db}: {first_line}") from None


def collect(db: Path, days: int, by: str | None = None) -> dict[str, Any]:
    """Every section as plain rows (dicts), read in one read-only session of a DuckDB file."""
    with read_only(db) as connection:
        return collect_from(connection, DUCKDB, days, str(db), by)


def show(data: dict[str, Any], fmt: str) -> None:
    """The report on stdout: JSON, or tables that fit the terminal, coloured on a TTY only.

    rich asks the terminal for its width and colours, and prints plain text (80 columns,
    or $COLUMNS) when stdout is a pipe or a file.
    """
    if fmt == "json":
        print(to_json(data))
    else:
        render(data, _Terminal(highlight=False))


class _Terminal(Console):
    """rich's console, leaving a closed pipe to the CLI (exit 141) instead of exiting 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def report_from(
    connection: Any, dialect: str, label: str, fmt: str = "table", days: int = 30
) -> str:
    """`report` over an open connection (DuckDB's or psycopg2's); `label` names the database."""
    check_arguments(fmt, days)
    data = collect_from(connection, dialect, days, label)
    return to_json(data) if fmt == "json" else to_table(data)


def collect_from(
    connection: Any, dialect: str, days: int, label: str, by: str | None = None
) -> dict[str, Any]:
    """Every section as plain rows (dicts), from an open connection in `dialect`.

    Sets the session's TimeZone to UTC, so that timestamps come back in UTC. `by`
    (`metadata.KEY`) adds a section `by` grouping the window's batches by that label.
    """
    key = metadata_key(by) if by else None
    execute(connection, dialect, "set TimeZone = 'UTC'")
    _require_views(connection, dialect, label)
    as_of = dict_rows(connection, dialect, AS_OF)[0]
    (open_summary,) = dict_rows(connection, dialect, OPEN_SUMMARY)
    (threshold,) = dict_rows(connection, dialect, LONG_FINALIZING)
    return {
        "database": label,
        "as_of": as_of["as_of"],
        "as_of_source": as_of["as_of_source"],
        "days": days,
        "long_finalizing_hours": threshold["stuck_after_hours"],
        "active": dict_rows(connection, dialect, ACTIVE),
        "windows": dict_rows(connection, dialect, WINDOW_RATES, windows=windows_for(days)),
        "durations": dict_rows(connection, dialect, DURATIONS, days=days),
        "open_batches": {
            **open_summary,
            "batches": dict_rows(connection, dialect, OPEN_BATCHES),
        },
        "error_codes": dict_rows(
            connection, dialect, ERROR_CODES, days=days, limit=ERROR_CODES_SHOWN
        ),
        "spend": collect_spend(connection, dialect, windows_for(days)),
        **(
            {
                "by": {
                    "key": key,
                    "rows": by_metadata(
                        lambda sql, **p: dict_rows(connection, dialect, sql, **p), key, days
                    ),
                }
            }
            if key
            else {}
        ),
        "request_errors": report_requests.collect(connection, dialect, days),
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
    if missing and not _has_extractions(connection, dialect):
        # nothing loaded: `models` would only send the user on to `extract`
        hint = f"batchlens extract --db {label}" if dialect == DUCKDB else "batchlens extract"
        raise UsageError(
            f"the database {label} holds no extraction yet; run `{hint}` (it builds the views too)"
        )
    if missing:
        hint = f"batchlens models --db {label}" if dialect == DUCKDB else "batchlens models"
        raise UsageError(
            f"the database {label} has no batchlens views ({', '.join(missing)} missing); "
            f"run `{hint}` after an extraction"
        )


def _has_extractions(connection: Any, dialect: str) -> bool:
    _, found = rows(
        connection,
        dialect,
        "select count(*) from information_schema.tables "
        "where table_catalog = current_database() and table_schema = $schema "
        "and table_name = $table",
        {"schema": SCHEMA, "table": EXTRACTIONS_TABLE},
    )
    return bool(found[0][0])


# --- JSON -----------------------------------------------------------------------------------


def to_json(data: dict[str, Any]) -> str:
    """Stable keys, ISO 8601 UTC timestamps, null for a rate without a denominator."""
    return json.dumps(data, default=_json_value, indent=2, allow_nan=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# --- terminal -------------------------------------------------------------------------------


def to_table(data: dict[str, Any], width: int = WIDTH) -> str:
    """The report as plain text `width` columns wide (what `report()` returns)."""
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    render(data, console)
    return console.export_text()


def render(data: dict[str, Any], console: Console) -> None:
    """The report onto `console`: the CLI's fits the terminal and has colour on a TTY only.

    Every value from the API goes in as `Text`, never as markup: a message holding
    `[bold]` or `[/]` is shown as it is.
    """
    days = data["days"]
    source = "" if data["as_of_source"] == "extraction" else " (no extraction recorded)"
    console.print(Text(f"batchlens report for {data['database']}", style="bold"))
    console.print(
        f"as of {when(data['as_of'])} UTC{source}; times are UTC, windows are UTC days "
        "up to that day",
        highlight=False,
    )
    several = len({row["account"] for row in data["active"]}) > 1

    active = _table(
        "Open now, by status",
        [*_if(several, "account"), "status", "batches", "oldest created at"],
    )
    for row in data["active"]:
        active.add_row(
            *_if(several, _text(row["account"])), row["status"], str(row["batches"]),
            when(row["oldest_created_at"]),
        )  # fmt: skip
    _show(console, active)

    windows = _table(
        "Terminal batches by window (created in the last N UTC days)",
        ["window", *_if(several, "account"), "terminal", "completed", "failed", "expired",
         "cancelled", "failure rate", "expired rate", "request failure rate"],
    )  # fmt: skip
    for row in data["windows"]:
        windows.add_row(
            f"{row['days']} d",
            *_if(several, _text(row["account"])),
            *(str(row[key]) for key in ("terminal", "completed", "failed", "expired")),
            str(row["cancelled"]),
            rate(row["failure_rate"]),
            rate(row["expired_rate"]),
            rate(row["request_failure_rate"]),
        )
    _show(console, windows)

    durations = _table(
        f"Completed batches, last {days} d: duration (in_progress to completed)",
        [*_if(several, "account"), "endpoint", "model", "batches", "p50 duration",
         "p90 duration"],
    )  # fmt: skip
    for row in data["durations"]:
        durations.add_row(
            *_if(several, _text(row["account"])),
            _text(row["endpoint"] or "-"),
            _text(row["model"] or "(no model)"),
            str(row["batches"]),
            duration(row["duration_p50_s"]),
            duration(row["duration_p90_s"]),
        )
    _show(console, durations)

    open_batches = data["open_batches"]
    flagged = [row for row in open_batches["batches"] if _needs_attention(row)]
    others = [row for row in open_batches["batches"] if not _needs_attention(row)]
    shown = flagged[:OPEN_BATCHES_SHOWN] + others[:OTHER_OPEN_SHOWN]
    more = open_batches["total"] - len(shown)
    title = (
        f"Open batches: {open_batches['total']}, {open_batches['overdue']} overdue, "
        f"{open_batches['long_finalizing']} finalizing > {data['long_finalizing_hours']:g} h"
        " (stuck first, then overdue, then the oldest)"
        + (f"; {more} more in --format json" if more > 0 else "")
    )
    table = _table(
        title,
        ["batch", *_if(several, "account"), "status", "endpoint", "model",
         "created at", "hours in status"],
    )  # fmt: skip
    for row in shown:
        table.add_row(
            _text(row["batch_id"]),
            *_if(several, _text(row["account"])),
            Text(row["status"]).append_text(flags(row)),
            _text(row["endpoint"] or "-"),
            _text(row["model"] or "(no model)"),
            when(row["created_at"], "%m-%d %H:%M"),
            f"{row['hours_in_status']:.1f}",
        )
    _show(console, table)

    errors = _table(
        f"Most common error codes, last {days} d",
        ["error code", "entries", "batches", "latest message"],
    )
    for row in data["error_codes"]:
        errors.add_row(
            _text(row["code"] or "(none)"), str(row["entries"]), str(row["batches"]),
            _text(row["example_message"] or ""),
        )  # fmt: skip
    _show(console, errors)
    show_spend(console, data["spend"], days)
    if "by" in data:
        _show(console, _by_table(data["by"], days))
    report_requests.show(console, data["request_errors"], days, _table, _show)


def _by_table(by: dict[str, Any], days: int) -> Table:
    key = by["key"]
    table = _table(
        f"Batches created in the last {days} d by metadata.{key}",
        [key, "batches", "open", "completed", "failed", "expired", "failure rate", "tokens"],
    )
    for row in by["rows"]:
        table.add_row(
            _text(f"(no {key})" if row["value"] is None else row["value"]),
            *(str(row[name]) for name in ("batches", "open", "completed", "failed", "expired")),
            rate(row["failure_rate"]),
            f"{row['total_tokens']:,}",
        )
    return table


def _needs_attention(row: dict[str, Any]) -> bool:
    return bool(row["is_overdue"] or row["is_long_finalizing"])


def _if(condition: bool, *items: Any) -> tuple:
    return items if condition else ()


def _text(value: Any) -> Text:
    """A value from the API, shown as it is: rich markup in it is not interpreted."""
    return Text(str(value))


NUMERIC_COLUMNS = {"batches", "open", "tokens", "terminal", "completed", "failed", "expired",
                   "cancelled", "entries", "hours in status", "p50 duration", "p90 duration",
                   "failure rate", "expired rate", "request failure rate"}  # fmt: skip


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(
        title=Text(title, style="bold"),
        title_justify="left",
        caption_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,  # no vertical rules, one space between columns: room to fit
        padding=(0, 0),
    )
    for column in columns:
        numeric = column in NUMERIC_COLUMNS
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=column == "batch",
            overflow="fold",  # a narrow terminal wraps a value, never cuts it to "…"
            # headers break at spaces; a status word is never cut
            min_width=len("in_progress") if column == "status" else max(map(len, column.split())),
        )
    return table


def _show(console: Console, table: Table) -> None:
    if not table.row_count:
        table.caption = "(none)"
    console.print(table)
    console.print()
