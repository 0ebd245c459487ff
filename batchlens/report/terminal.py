"""`batchlens report`: the questions people ask every morning, answered from the views.

Nothing here defines a metric. Each section is a query of `sql/queries/report/` over the
views of `sql/marts` (see docs/metrics.md), and its tables show the columns the query chose:
counts and rates are the views' own (`failure_rates`), "stuck" is `open_batches`', and
every window is anchored at the day of "as of" (`as_of.as_of_day`, the latest extraction),
never at the clock, so the same database gives the same report whenever it is read.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.text import Text

from batchlens.errors import UsageError
from batchlens.report import requests as report_requests
from batchlens.report.by_label import by_metadata, metadata_key
from batchlens.report.format import (
    NO_CODE,
    NO_MODEL,
    OPEN_BATCHES_ORDER,
    duration,
    flags,
    rate,
    when,
)
from batchlens.report.spend import collect_spend, show_spend
from batchlens.report.tables import Column, ReportTable
from batchlens.storage.dialects import DUCKDB, execute
from batchlens.storage.readers import EmptyDatabaseError
from batchlens.storage.target import Target
from batchlens.views.build import SCHEMA
from batchlens.views.queries import Rows, read
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


def read_only(db: Path, wait_seconds: float = 0.0) -> duckdb.DuckDBPyConnection:
    """A read-only session of a DuckDB file, after an extraction writing it (`wait_seconds`
    at most); a missing file, a folder or a file that is not DuckDB's is a usage error."""
    db = Path(db)
    return Target("duckdb", label=str(db), db=db, wait_seconds=wait_seconds).connect(read_only=True)


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
    # a session statement, not a query: every timestamp comes back in UTC
    execute(connection, dialect, "set TimeZone = 'UTC'")
    _require_views(connection, dialect, label)

    def query(name: str, **params: Any) -> Rows:
        return read(connection, dialect, f"report/{name}", **params)

    (as_of,) = query("as_of")
    (open_summary,) = query("open_summary")
    (threshold,) = query("long_finalizing")
    return {
        "database": label,
        "as_of": as_of["as_of"],
        "as_of_source": as_of["as_of_source"],
        "days": days,
        "long_finalizing_hours": threshold["stuck_after_hours"],
        "active": query("active"),
        "windows": query("window_rates", windows=windows_for(days)),
        "durations": query("durations", days=days),
        "open_batches": {**open_summary, "batches": query("open_batches")},
        "error_codes": query("error_codes", days=days, limit=ERROR_CODES_SHOWN),
        "spend": collect_spend(connection, dialect, windows_for(days)),
        **({"by": {"key": key, "rows": by_metadata(query, key, days)}} if key else {}),
        "request_errors": report_requests.collect(connection, dialect, days),
    }


def _require_views(connection: Any, dialect: str, label: str) -> None:
    found = read(connection, dialect, "report/views", schema=SCHEMA)
    missing = sorted(set(REQUIRED_VIEWS) - {row["table_name"] for row in found})
    if missing and not _has_extractions(connection, dialect):
        # nothing loaded: `models` would only send the user on to `extract`
        raise EmptyDatabaseError(label, dialect)
    if missing:
        hint = f"batchlens models --db {label}" if dialect == DUCKDB else "batchlens models"
        raise UsageError(
            f"the database {label} has no batchlens views ({', '.join(missing)} missing); "
            f"run `{hint}` after an extraction"
        )


def _has_extractions(connection: Any, dialect: str) -> bool:
    (found,) = read(
        connection, dialect, "report/has_extractions", schema=SCHEMA, table=EXTRACTIONS_TABLE
    )
    return bool(found["tables_found"])


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

    Every table fits `console.width` without cutting a value (see `tables`), and every
    value from the API goes in as `Text`, never as markup: a message holding `[bold]` or
    `[/]` is shown as it is.
    """
    days = data["days"]
    source = "" if data["as_of_source"] == "extraction" else " (no extraction recorded)"
    console.print(Text(f"batchlens report for {data['database']}", style="bold"))
    console.print(
        Text(
            f"as of {when(data['as_of'])} UTC{source}; times are UTC, windows are UTC days "
            "up to that day"
        )
    )
    console.print()
    several = len({row["account"] for row in data["active"]}) > 1
    account = _if(several, Column("account", "key", lead=True))

    active = ReportTable(
        "Open now, by status",
        [*account, Column("status", "key", lead=True), Column("batches", "number"),
         Column("oldest created at")],
    )  # fmt: skip
    for row in data["active"]:
        active.add_row(
            *_if(several, _text(row["account"])), _text(row["status"]), str(row["batches"]),
            when(row["oldest_created_at"]),
        )  # fmt: skip
    active.show(console)

    shown = window_columns(data["windows"])
    windows = ReportTable(
        "Terminal batches by window (created in the last N UTC days)",
        [Column("window", "key", lead=True), *account,
         *(Column(_header(name), "number") for name in shown)],
    )  # fmt: skip
    for row in data["windows"]:
        windows.add_row(
            f"{row['days']} d",
            *_if(several, _text(row["account"])),
            *(_value(name, row[name]) for name in shown),
        )
    windows.show(console)

    durations = ReportTable(
        f"Completed batches, last {days} d: duration (in_progress to completed)",
        [*account, Column("endpoint", "key", lead=True), Column("model", "key", lead=True),
         Column("batches", "number"), Column("p50 duration", "number"),
         Column("p90 duration", "number")],
    )  # fmt: skip
    for row in data["durations"]:
        durations.add_row(
            *_if(several, _text(row["account"])),
            _text(row["endpoint"] or "-"),
            _text(row["model"] or NO_MODEL),
            str(row["batches"]),
            duration(row["duration_p50_s"]),
            duration(row["duration_p90_s"]),
        )
    durations.show(console)

    open_batches = data["open_batches"]
    flagged = [row for row in open_batches["batches"] if _needs_attention(row)]
    others = [row for row in open_batches["batches"] if not _needs_attention(row)]
    listed = flagged[:OPEN_BATCHES_SHOWN] + others[:OTHER_OPEN_SHOWN]
    more = open_batches["total"] - len(listed)
    table = ReportTable(
        f"Open batches: {open_batches['total']}, {open_batches['overdue']} overdue, "
        f"{open_batches['long_finalizing']} finalizing > {data['long_finalizing_hours']:g} h"
        f" ({OPEN_BATCHES_ORDER})"
        + (f"; {more} more in --format json" if more > 0 else ""),
        [Column("batch", "key", lead=True), *_if(several, Column("account", "key")),
         Column("status", "words", lead=True), Column("endpoint", "key"),
         Column("model", "key"), Column("created at"), Column("hours in status", "number")],
    )  # fmt: skip
    for row in listed:
        table.add_row(
            _text(row["batch_id"]),
            *_if(several, _text(row["account"])),
            _text(row["status"]).append_text(flags(row)),
            _text(row["endpoint"] or "-"),
            _text(row["model"] or NO_MODEL),
            when(row["created_at"], "%m-%d %H:%M"),
            f"{row['hours_in_status']:.1f}",
        )
    table.show(console)

    errors = ReportTable(
        f"Most common error codes, last {days} d",
        [Column("error code", "key", lead=True), Column("entries", "number"),
         Column("batches", "number"), Column("latest message", "text")],
    )  # fmt: skip
    for row in data["error_codes"]:
        errors.add_row(
            _text(row["code"] or NO_CODE), str(row["entries"]), str(row["batches"]),
            _text(row["example_message"] or ""),
        )  # fmt: skip
    errors.show(console)
    show_spend(console, data["spend"], days, several=several)
    if "by" in data:
        _by_table(data["by"], days).show(console)
    report_requests.show(console, data["request_errors"], days, several=several)


def _by_table(by: dict[str, Any], days: int) -> ReportTable:
    key = by["key"]
    shown = [name for name in _columns(by["rows"]) if name not in BY_HIDDEN]
    table = ReportTable(
        f"Batches created in the last {days} d by metadata.{key}",
        [Column(key, "key", lead=True), *(Column(_header(name), "number") for name in shown),
         Column("tokens", "number")],
    )  # fmt: skip
    for row in by["rows"]:
        table.add_row(
            _text(f"(no {key})" if row["value"] is None else row["value"]),
            *(_value(name, row[name]) for name in shown),
            f"{row['total_tokens']:,}",
        )
    return table


def window_columns(windows: list[dict[str, Any]]) -> list[str]:
    """The windows query's counts and rates a table shows, in the query's order."""
    return [name for name in _columns(windows) if name not in WINDOW_HIDDEN]


def _columns(found: list[dict[str, Any]]) -> list[str]:
    """A query's column names: the `Rows` it came as, else the first row's keys."""
    columns = getattr(found, "columns", None)
    return list(columns if columns is not None else (found[0] if found else ()))


def _header(name: str) -> str:
    return name.replace("_", " ")


def _value(name: str, value: Any) -> str:
    return rate(value) if name.endswith("_rate") else str(value)


def _needs_attention(row: dict[str, Any]) -> bool:
    return bool(row["is_overdue"] or row["is_long_finalizing"])


def _if(condition: bool, *items: Any) -> tuple:
    return items if condition else ()


def _text(value: Any) -> Text:
    """A value from the API, shown as it is: rich markup in it is not interpreted."""
    return Text(str(value))


# Columns of the windows' and the labels' rows the tables leave to the JSON (or show apart);
# every other column is a count or a rate, shown in the query's order.
WINDOW_HIDDEN = {"days", "account", "request_total", "request_failed"}
BY_HIDDEN = {"value", "terminal", "total_tokens"}
