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
from batchlens.storage.target import Target
from batchlens.views.build import SCHEMA
from batchlens.views.prices import COLUMNS, TABLE, PriceRow, load_overrides, price_rows
from batchlens.views.queries import read

WIDTH = 140


def _open(target: Target) -> Any:
    target.require_database()
    return target.connect(read_only=True)


def _read(connection: Any, dialect: str, label: str) -> list[dict[str, Any]]:
    (found,) = read(connection, dialect, "prices/tables", schema=SCHEMA, prices_table=TABLE)
    if found["present"] < 3:
        hint = f"batchlens models --db {label}" if dialect == "duckdb" else "batchlens models"
        raise UsageError(f"{label} has no prices yet; run `{hint}` after an extraction")
    return read(connection, dialect, "prices/price_list")


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
