"""The report's "Why requests failed" section: request error codes and all-failed batches.

Selected from the views (`request_error_codes_daily`, `batch_facts`) by the queries of
`sql/queries/report/`; nothing is computed here. Kept apart from `terminal.py` so that the
section can be read, and tested, on its own.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from batchlens.report.format import NO_CODE
from batchlens.report.tables import Column, ReportTable
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


def show(console: Console, section: dict[str, Any], days: int, several: bool = True) -> None:
    """Prints the section; the account column only with `several` accounts. API text is
    never markup."""
    codes = ReportTable(
        f"Why requests failed, last {days} d (from the batches' error files)",
        [Column("code", "key", lead=True), Column("requests", "number"),
         Column("batches", "number"), Column("example message", "text")],
    )  # fmt: skip
    for row in section["codes"]:
        codes.add_row(
            Text(row["error_code"] or NO_CODE),
            str(row["requests"]),
            str(row["batches"]),
            Text(row["example_message"] or ""),
        )
    codes.show(console)
    batches = section["all_failed_batches"]
    shown = batches[:ALL_FAILED_SHOWN]
    more = len(batches) - len(shown)
    every = ReportTable(
        f"Batches where every request failed: {len(batches)}"
        + (f" ({more} more not shown)" if more > 0 else ""),
        [Column("batch", "key", lead=True), *([Column("account", "key")] if several else []),
         Column("status", "key", lead=True), Column("created at"),
         Column("requests", "number"), Column("most common code", "key")],
    )  # fmt: skip
    for row in shown:
        created = row["created_at"]
        every.add_row(
            Text(row["batch_id"]),
            *([Text(row["account"])] if several else []),
            Text(row["status"]),
            "-" if created is None else created.strftime("%Y-%m-%d %H:%M"),
            str(row["request_total"]),
            Text(row["top_request_error_code"] or "-"),
        )
    every.show(console)
