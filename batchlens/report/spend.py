"""The report's "Spend" section: what the batches cost and what batching saved, by window.

It only adds up `costs_daily` (docs/metrics.md defines every cost there and in
`batch_costs`) over the report's windows (`sql/queries/report/spend.sql`), and names the
models without a price (`unpriced.sql`): their batches have no cost rather than a cost of
0, and the user fixes that with a price row.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from batchlens.report.format import NO_MODEL
from batchlens.report.tables import Column, ReportTable
from batchlens.views.queries import read


def collect_spend(connection: Any, dialect: str, windows: list[int]) -> dict[str, Any]:
    """Spend by window, account and model, and the unpriced models of the longest window."""
    return {
        "windows": read(connection, dialect, "report/spend", windows=windows),
        "unpriced_models": read(connection, dialect, "report/unpriced", days=max(windows)),
    }


def show_spend(console: Console, spend: dict[str, Any], days: int, several: bool = True) -> None:
    """The section in the terminal report: one table, then the unpriced models; the account
    column only with `several` accounts. API text (models, accounts) is never markup."""
    account = [Column("account", "key", lead=True)] if several else []
    table = ReportTable(
        "Spend (batch prices, USD) and what batching saved",
        [Column("last", "key", lead=True), *account, Column("model", "key", lead=True),
         Column("priced batches", "number"), Column("cost", "number"),
         Column("saved", "number"), Column("unpriced batches", "number")],
        empty="(no batch with usage)",
    )  # fmt: skip
    for row in spend["windows"]:
        table.add_row(
            f"{row['days']} d",
            *([Text(row["account"])] if several else []),
            Text(row["model"] or NO_MODEL),
            str(row["priced_batches"]),
            _usd(row["cost_usd"]),
            _usd(row["saved_usd"]),
            str(row["unpriced_batches"] or ""),
        )
    table.show(console)
    for row in spend["unpriced_models"]:
        counted = f"{row['batches']} batches in the last {days} d, latest {row['latest_batch_id']}"
        if row["model"] is None:  # nothing to price it by: a prices CSV cannot help
            line = f"no model named ({row['account']}): {counted}; their cost is unknown"
        else:
            line = (
                f"no price for {row['model']} ({row['account']}): {counted}; add it to a "
                "prices CSV (batchlens prices)"
            )
        console.print(Text(line))
    if spend["unpriced_models"]:
        console.print()


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"
