"""The report's "Why requests failed" section: request error codes and all-failed batches.

Selected from the views (`request_error_codes_daily`, `batch_facts`) by the queries of
`sql/queries/report/`; nothing is computed here. Kept apart from `terminal.py` so that the
section can be read, and tested, on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchlens.views.queries import read

CODES_SHOWN = 10
ALL_FAILED_SHOWN = 10


def collect(connection: Any, dialect: str, days: int) -> dict[str, Any]:
    """Top request error codes and the batches where every request failed, last `days`."""
    return {
        "codes": read(
            connection, dialect, "report/request_error_codes", days=days, limit=CODES_SHOWN
        ),
        "all_failed_batches": read(connection, dialect, "report/all_failed_batches", days=days),
    }


def show(
    console: Console,
    section: dict[str, Any],
    days: int,
    new_table: Callable[[str, list[str]], Table],
    show_table: Callable[[Console, Table], None],
) -> None:
    """Prints the section with the report's own table helpers. API text is never markup."""
    codes = new_table(
        f"Why requests failed, last {days} d (from the batches' error files)",
        ["code", "requests", "batches", "example message"],
    )
    for row in section["codes"]:
        codes.add_row(
            Text(row["error_code"] or "(none)"),
            str(row["requests"]),
            str(row["batches"]),
            Text(row["example_message"] or ""),
        )
    show_table(console, codes)
    batches = section["all_failed_batches"]
    shown = batches[:ALL_FAILED_SHOWN]
    more = len(batches) - len(shown)
    every = new_table(
        f"Batches where every request failed: {len(batches)}"
        + (f" ({more} more not shown)" if more > 0 else ""),
        ["batch", "account", "status", "created", "requests", "top code"],
    )
    for row in shown:
        created = row["created_at"]
        every.add_row(
            Text(row["batch_id"]),
            Text(row["account"]),
            row["status"],
            "-" if created is None else created.strftime("%Y-%m-%d %H:%M"),
            str(row["request_total"]),
            Text(row["top_request_error_code"] or "-"),
        )
    show_table(console, every)
