"""The report's "Spend" section: what the batches cost and what batching saved, by window.

It only adds up `costs_daily` (docs/metrics.md defines every cost there and in
`batch_costs`) over the report's windows, and names the models without a price: their
batches have no cost rather than a cost of 0, and the user fixes that with a price row.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from batchlens.storage.dialects import rows
from batchlens.views.build import SCHEMA

SPEND = f"""
with

windows as (
    select unnest($windows) as days
),

as_of as (
    select cast(as_of at time zone 'UTC' as date) as as_of_day from {SCHEMA}.as_of
),

daily as (
    select * from {SCHEMA}.costs_daily
    where priced_batches + unpriced_batches > 0
)

select
    windows.days,
    daily.account,
    daily.model,
    cast(sum(daily.priced_batches) as bigint) as priced_batches,
    cast(sum(daily.unpriced_batches) as bigint) as unpriced_batches,
    sum(daily.cost_usd) as cost_usd,
    sum(daily.saved_usd) as saved_usd
from windows
cross join as_of
inner join daily
    on
        daily.day > as_of.as_of_day - windows.days
        and daily.day <= as_of.as_of_day
group by windows.days, daily.account, daily.model
order by windows.days, daily.account, cost_usd desc nulls last, daily.model
"""

# The unpriced models of the longest window, with their latest batch as an example.
UNPRICED = f"""
with

as_of as (
    select cast(as_of at time zone 'UTC' as date) as as_of_day from {SCHEMA}.as_of
)

select
    costs.account,
    costs.model,
    count(*) as batches,
    arg_max(costs.batch_id, facts.created_at) as latest_batch_id
from {SCHEMA}.batch_costs as costs
inner join {SCHEMA}.batch_lifecycle as facts
    on costs.account = facts.account and costs.batch_id = facts.batch_id
cross join as_of
where
    not costs.is_priced
    and costs.created_day > as_of.as_of_day - $days
    and costs.created_day <= as_of.as_of_day
group by costs.account, costs.model
order by costs.account, batches desc, costs.model
"""


def collect_spend(connection: Any, dialect: str, windows: list[int]) -> dict[str, Any]:
    """Spend by window, account and model, and the unpriced models of the longest window."""

    def read(sql: str, **params: Any) -> list[dict[str, Any]]:
        names, found = rows(connection, dialect, sql, params)
        return [dict(zip(names, row, strict=True)) for row in found]

    return {
        "windows": read(SPEND, windows=windows),
        "unpriced_models": read(UNPRICED, days=max(windows)),
    }


def show_spend(console: Console, spend: dict[str, Any], days: int) -> None:
    """The section in the terminal report: one table, then the unpriced models."""
    table = Table(
        title="Spend (batch prices, USD) and what batching saved",
        title_justify="left",
        show_edge=False,
    )
    for column in ("last", "account", "model", "priced", "cost", "saved", "unpriced"):
        right = column in {"priced", "cost", "saved", "unpriced"}
        table.add_column(column, justify="right" if right else "left")
    for row in spend["windows"]:
        table.add_row(
            f"{row['days']} d",
            escape(row["account"]),
            escape(row["model"] or "(none)"),
            str(row["priced_batches"]),
            _usd(row["cost_usd"]),
            _usd(row["saved_usd"]),
            str(row["unpriced_batches"] or ""),
        )
    if not table.row_count:
        table.caption = "(no batch with usage)"
    console.print(table)
    for row in spend["unpriced_models"]:
        counted = f"{row['batches']} batches in the last {days} d, latest {row['latest_batch_id']}"
        if row["model"] is None:  # nothing to price it by: a prices CSV cannot help
            line = f"  no model named ({row['account']}): {counted}; their cost is unknown"
        else:
            line = (
                f"  no price for {row['model']} ({row['account']}): {counted}; add it to a "
                "prices CSV (batchlens prices)"
            )
        console.print(line, markup=False)
    console.print()


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"
