"""The report's "Spend" section: what the batches cost and what batching saved, by window.

It only adds up `costs_daily` (docs/metrics.md defines every cost there and in
`batch_costs`) over the report's windows (`sql/queries/report/spend.sql`), and names the
models without a price (`unpriced.sql`): their batches have no cost rather than a cost of
0, and the user fixes that with a price row.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from batchlens.views.queries import read


def collect_spend(connection: Any, dialect: str, windows: list[int]) -> dict[str, Any]:
    """Spend by window, account and model, and the unpriced models of the longest window."""
    return {
        "windows": read(connection, dialect, "report/spend", windows=windows),
        "unpriced_models": read(connection, dialect, "report/unpriced", days=max(windows)),
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
