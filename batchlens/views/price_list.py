"""`batchlens prices`: the price each model of the history is costed at, and the unpriced.

It reads what the views use (the `model_prices` table written by the last model build)
and compares it with what the catalogue and the configured override file give now, so a
user who just edited the file, or upgraded genai-prices, learns that `batchlens models`
applies it. Read-only, like the report.
"""

from __future__ import annotations

import contextlib
import io
import sys
from datetime import date
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from batchlens.errors import UsageError
from batchlens.storage.dialects import rows
from batchlens.storage.target import Target
from batchlens.views.build import SCHEMA
from batchlens.views.prices import COLUMNS, TABLE, PriceRow, load_overrides, price_rows

WIDTH = 140

# Every model of the history, with its price periods (none: unpriced) and its batches.
PRICE_LIST = f"""
with

history as (
    select
        account,
        model,
        count(*) as batches
    from {SCHEMA}.batch_lifecycle
    where model is not null
    group by account, model
),

costed as (
    select
        account,
        model,
        count(*) as batches_with_usage,
        sum(cost_usd) as cost_usd
    from {SCHEMA}.batch_costs
    group by account, model
),

per_model as (
    select
        history.model,
        sum(history.batches) as batches,
        sum(coalesce(costed.batches_with_usage, 0)) as batches_with_usage,
        sum(costed.cost_usd) as cost_usd
    from history
    left join costed
        on history.account = costed.account and history.model = costed.model
    group by history.model
)

select
    per_model.model,
    cast(per_model.batches as bigint) as batches,
    cast(per_model.batches_with_usage as bigint) as batches_with_usage,
    per_model.cost_usd,
    prices.provider,
    prices.valid_from,
    prices.input_mtok,
    prices.cached_input_mtok,
    prices.output_mtok,
    prices.batch_discount,
    prices.source
from per_model
left join {SCHEMA}.{TABLE} as prices
    on per_model.model = prices.model
order by per_model.model, prices.valid_from nulls first
"""


def _open(target: Target) -> Any:
    target.require_database()
    return target.connect(read_only=True)


def _read(connection: Any, dialect: str, label: str) -> list[dict[str, Any]]:
    _, found = rows(
        connection,
        dialect,
        "select count(*) from information_schema.tables where table_catalog = "
        "current_database() and table_schema = $schema and table_name in ($a, $b, $c)",
        {"schema": SCHEMA, "a": TABLE, "b": "batch_costs", "c": "batch_lifecycle"},
    )
    if found[0][0] < 3:
        hint = f"batchlens models --db {label}" if dialect == "duckdb" else "batchlens models"
        raise UsageError(f"{label} has no prices yet; run `{hint}` after an extraction")
    names, found = rows(connection, dialect, PRICE_LIST)
    return [dict(zip(names, row, strict=True)) for row in found]


def _stored(listing: list[dict[str, Any]]) -> set[tuple]:
    return {tuple(row[name] for name in COLUMNS) for row in listing if row["source"] is not None}


def _current(listing: list[dict[str, Any]], prices_arg: str | None) -> set[tuple]:
    rows_now: list[PriceRow] = price_rows(
        {row["model"] for row in listing}, load_overrides(prices_arg)
    )
    return {tuple(getattr(row, name) for name in COLUMNS) for row in rows_now}


def stale_note(listing: list[dict[str, Any]], prices_arg: str | None) -> str | None:
    """A sentence when the views' prices are not what the configuration gives now."""
    if _stored(listing) == _current(listing, prices_arg):
        return None
    return (
        "the views were built with other prices than the catalogue and the override file "
        "give now; run `batchlens models` (with the same --prices) to apply them"
    )


def warn_if_stale(target: Target, prices_arg: str | None) -> None:
    """For `report --prices`: one warning line when the views use other prices.

    Only when an override file is configured: the report stays fast and read-only, and a
    bad file is still a configuration error (exit 2) before anything is read.
    """
    from batchlens.views.prices import prices_path

    if prices_path(prices_arg) is None:
        return
    load_overrides(prices_arg)
    with contextlib.suppress(UsageError), contextlib.closing(_open(target)) as connection:
        note = stale_note(_read(connection, target.dialect, target.label), prices_arg)
        if note:
            print(f"batchlens: warning: {note}", file=sys.stderr)


def prices_report(target: Target, prices_arg: str | None = None) -> str:
    """The price list as text: one line per model and price period, then the unpriced."""
    load_overrides(prices_arg)  # a malformed file: exit 2 before anything else
    with contextlib.closing(_open(target)) as connection:
        listing = _read(connection, target.dialect, target.label)
    console = Console(file=io.StringIO(), width=WIDTH, record=True, color_system=None)
    table = Table(
        title=f"Prices the views use, USD per million tokens ({escape(target.label)})",
        title_justify="left",
        show_edge=False,
    )
    for column in ("model", "provider", "valid from", "input", "cached", "output",
                   "batch pays", "source", "batches"):  # fmt: skip
        text = column in {"model", "provider", "source"}
        table.add_column(column, justify="left" if text else "right", no_wrap=True)
    unpriced = [row for row in listing if row["source"] is None]
    for row in listing:
        if row["source"] is None:
            continue
        table.add_row(
            escape(row["model"]),
            escape(row["provider"]),
            _day(row["valid_from"]),
            f"{row['input_mtok']:g}",
            f"{row['cached_input_mtok']:g}",
            f"{row['output_mtok']:g}",
            f"{row['batch_discount']:.0%}",
            escape(row["source"]),
            str(row["batches"]),
        )
    console.print(table)
    console.print()
    if unpriced:
        console.print(
            "Models without a price (their batches have no cost, not a cost of 0):", markup=False
        )
        for row in unpriced:
            console.print(
                f"  {row['model']}: {row['batches']} batches, "
                f"{row['batches_with_usage']} with usage",
                markup=False,
            )
        console.print(
            "Add them to a prices CSV (model,input_mtok,cached_input_mtok,output_mtok) and "
            "pass it with --prices, $BATCHLENS_PRICES or prices under [sources.openai_batches].",
            markup=False,
        )
    else:
        console.print("Every model in the history has a price.")
    note = stale_note(listing, prices_arg)
    if note:
        console.print(f"Note: {note}.", markup=False)
    return console.export_text().rstrip()


def _day(value: date | None) -> str:
    return "always" if value is None else value.isoformat()
