"""The report's "Why requests failed" section: request error codes and all-failed batches.

Selected from the views (`request_error_codes_daily`, `batch_facts`); nothing is computed
here. Kept apart from `report.py` so that the section can be read, and tested, on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchlens.storage.dialects import rows
from batchlens.views.build import SCHEMA

CODES_SHOWN = 10
ALL_FAILED_SHOWN = 10

# A batch has one creation day, endpoint and model: summing `batches` over them is exact.
REQUEST_ERROR_CODES = f"""
select
    daily.error_code,
    cast(sum(daily.requests) as bigint) as requests,
    cast(sum(daily.batches) as bigint) as batches,
    min(daily.example_message) as example_message
from {SCHEMA}.request_error_codes_daily as daily
cross join (
    select cast(as_of at time zone 'UTC' as date) as as_of_day from {SCHEMA}.as_of
) as as_of
where
    daily.day > as_of.as_of_day - $days
    and daily.day <= as_of.as_of_day
group by daily.error_code
order by requests desc, daily.error_code nulls last
limit $limit
"""

ALL_FAILED_BATCHES = f"""
select
    facts.batch_id,
    facts.account,
    facts.status,
    facts.created_at,
    facts.request_total,
    facts.request_error_rows,
    facts.top_request_error_code
from {SCHEMA}.batch_facts as facts
cross join (
    select cast(as_of at time zone 'UTC' as date) as as_of_day from {SCHEMA}.as_of
) as as_of
where
    facts.is_all_failed
    and facts.created_day > as_of.as_of_day - $days
    and facts.created_day <= as_of.as_of_day
order by facts.created_at desc, facts.batch_id
"""


def collect(connection: Any, dialect: str, days: int) -> dict[str, Any]:
    """Top request error codes and the batches where every request failed, last `days`."""
    return {
        "codes": _dicts(
            connection, dialect, REQUEST_ERROR_CODES, {"days": days, "limit": CODES_SHOWN}
        ),
        "all_failed_batches": _dicts(connection, dialect, ALL_FAILED_BATCHES, {"days": days}),
    }


def _dicts(connection: Any, dialect: str, sql: str, params: dict[str, Any]) -> list[dict]:
    names, found = rows(connection, dialect, sql, params)
    return [dict(zip(names, row, strict=True)) for row in found]


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
