"""What each model in the history costs: the `model_prices` table the cost views read.

Prices come from genai-prices (Pydantic's offline catalogue: it ships its data, knows
cached-input prices and the dates prices changed), never from a list kept in this code.
An override CSV names negotiated rates and the models the catalogue cannot know
(fine-tuned, custom); its rows win over the catalogue for that exact model name. The table
holds *standard* prices and the fraction paid in batch (`batch_discount`) separately,
because catalogues disagree on batch rates while "half of the standard price" is what the
providers publish; the SQL applies the discount (`sql/marts/batch_costs.sql`).

The table is written by `models.build_models`, in the same transaction as the views, so
the views and the prices they read always change together.
"""

from __future__ import annotations

import csv
import importlib.metadata
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dlt

from batchlens.config import SECTION
from batchlens.errors import UsageError

TABLE = "model_prices"
PRICES_ENV = "BATCHLENS_PRICES"
DEFAULT_PROVIDER = "openai"  # the Batch API is OpenAI's: a model nobody knows is billed there
# OpenAI, Anthropic, Google, Bedrock and Azure all bill batch jobs at half the standard
# price; `[sources.openai_batches.batch_discount]` sets another fraction per provider.
DEFAULT_BATCH_DISCOUNT = 0.5
HEADER = ("model", "input_mtok", "cached_input_mtok", "output_mtok")
OPTIONAL_COLUMNS = ("valid_from",)
COLUMNS = {
    "provider": "varchar",
    "model": "varchar",
    "valid_from": "date",
    "input_mtok": "double",
    "cached_input_mtok": "double",
    "output_mtok": "double",
    "batch_discount": "double",
    "source": "varchar",
}


@dataclass(frozen=True)
class Price:
    """Standard USD per million tokens of one model from `valid_from` (None: always)."""

    model: str
    valid_from: date | None
    input_mtok: float
    cached_input_mtok: float
    output_mtok: float
    source: str
    provider: str = DEFAULT_PROVIDER


@dataclass(frozen=True)
class Overrides:
    """The rows of an override file, by model name; `name` is the file's name."""

    name: str
    prices: dict[str, tuple[Price, ...]]


@dataclass(frozen=True)
class PriceRow:
    """One row of `model_prices`."""

    provider: str
    model: str
    valid_from: date | None
    input_mtok: float
    cached_input_mtok: float
    output_mtok: float
    batch_discount: float
    source: str


# --- configuration --------------------------------------------------------------------------


def prices_path(cli_value: str | None = None) -> Path | None:
    """`--prices`, else $BATCHLENS_PRICES, else `prices` under [sources.openai_batches]."""
    value = cli_value or os.environ.get(PRICES_ENV) or dlt.config.get(f"{SECTION}.prices")
    return Path(str(value)).expanduser().absolute() if value else None


def load_overrides(cli_value: str | None = None) -> Overrides | None:
    """The configured override file, read and checked; None when none is configured.

    Called before a command touches the database, so a malformed file (or batch discount)
    stops the run with exit 2 and nothing changed.
    """
    batch_discounts()  # checked here too: a bad one must not wait until after the load
    path = prices_path(cli_value)
    return read_overrides(path) if path is not None else None


def read_overrides(path: Path) -> Overrides:
    """Reads an override CSV; UsageError naming the line for anything malformed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read the prices file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the prices file {path} is not UTF-8 text") from None
    lines = list(csv.reader(text.splitlines()))
    if not lines:
        raise UsageError(f"{path}: line 1: empty file; expected the header {','.join(HEADER)}")
    header = tuple(name.strip() for name in lines[0])
    if header[: len(HEADER)] != HEADER or not set(header[len(HEADER) :]) <= set(OPTIONAL_COLUMNS):
        raise UsageError(
            f"{path}: line 1: the header must be {','.join(HEADER)} (and optionally "
            f"valid_from), got {','.join(header)}"
        )
    found: dict[str, list[Price]] = {}
    seen: set[tuple[str, date | None]] = set()
    for number, fields in enumerate(lines[1:], start=2):
        if not any(field.strip() for field in fields):
            continue  # blank lines are harmless
        price = _override_row(path, number, header, fields)
        key = (price.model, price.valid_from)
        if key in seen:
            raise UsageError(f"{path}: line {number}: {price.model} is listed twice")
        seen.add(key)
        found.setdefault(price.model, []).append(price)
    return Overrides(
        name=path.name,
        prices={
            model: tuple(sorted(rows, key=lambda p: p.valid_from or date.min))
            for model, rows in found.items()
        },
    )


def _override_row(path: Path, number: int, header: tuple[str, ...], fields: list[str]) -> Price:
    def fail(why: str) -> UsageError:
        return UsageError(f"{path}: line {number}: {why}")

    if len(fields) != len(header):
        raise fail(f"expected {len(header)} fields ({','.join(header)}), got {len(fields)}")
    row = dict(zip(header, (field.strip() for field in fields), strict=True))
    if not row["model"]:
        raise fail("the model name is empty")

    def amount(column: str, default: float | None = None) -> float:
        value = row[column]
        if not value and default is not None:
            return default
        try:
            number_ = float(value)
        except ValueError:
            number_ = math.nan
        if not math.isfinite(number_) or number_ < 0:
            raise fail(f"{column} must be a number of USD per million tokens, got {value!r}")
        return number_

    input_mtok = amount("input_mtok")
    valid_from = None
    if row.get("valid_from"):
        try:
            valid_from = date.fromisoformat(row["valid_from"])
        except ValueError:
            why = f"valid_from must be a date like 2026-01-31, got {row['valid_from']!r}"
            raise fail(why) from None
    return Price(
        model=row["model"],
        valid_from=valid_from,
        input_mtok=input_mtok,
        cached_input_mtok=amount("cached_input_mtok", default=input_mtok),
        output_mtok=amount("output_mtok"),
        source=path.name,
    )


def batch_discounts() -> dict[str, float]:
    """`[sources.openai_batches.batch_discount]`: provider = fraction paid in batch."""
    value = dlt.config.get(f"{SECTION}.batch_discount")
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"[{SECTION}.batch_discount] must be a table of provider = fraction")
    discounts = {}
    for provider, fraction in value.items():
        try:
            number = float(fraction)
        except (TypeError, ValueError):
            number = math.nan
        if not 0 < number <= 1:
            raise UsageError(
                f"[{SECTION}.batch_discount] {provider} must be a fraction above 0 and at "
                f"most 1 (0.5 = half price), got {fraction!r}"
            )
        discounts[str(provider).lower()] = number
    return discounts


# --- the catalogue --------------------------------------------------------------------------


def catalogue_source() -> str:
    import genai_prices

    return f"genai-prices {genai_prices.__version__}"


def _catalogue_model(model: str) -> tuple[Any, Any] | None:
    """genai-prices' (provider, model) for a model name: OpenAI first, then any provider."""
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    for provider_id in (DEFAULT_PROVIDER, None):
        try:
            return snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
    return None


def catalogue_prices(model: str) -> tuple[Price, ...]:
    """Every price period genai-prices has for `model`; empty when it has none.

    A period starts on a date (genai-prices' StartDateConstraint, compared with the UTC
    date of the request, as here with the batch's `created_day`); the first one is valid
    from always, as genai-prices applies it to anything older. Periods by time of day
    (off-peak rates) do not apply to batches and are skipped. Only the token prices are
    read; a tier's base price is used (batches are billed per request, not per job).
    A model the catalogue lists with no price at all (moderation) is free; one priced
    only in other units (images, audio) has no token price, so no row.
    """
    from genai_prices import types

    found = _catalogue_model(model)
    if found is None:
        return ()
    provider, info = found
    periods = (
        [(None, info.prices)]
        if isinstance(info.prices, types.ModelPrice)
        else [
            (getattr(conditional.constraint, "start_date", None), conditional.prices)
            for conditional in info.prices
            if conditional.constraint is None
            or isinstance(conditional.constraint, types.StartDateConstraint)
        ]
    )
    source = catalogue_source()
    prices = []
    for index, (start, price) in enumerate(periods):
        values = {key: _base(value) for key, value in vars(price).items() if value is not None}
        if not values:
            input_mtok = cached = output = 0.0
        elif "input_mtok" not in values:
            return ()
        else:
            input_mtok = values["input_mtok"]
            cached = values.get("cache_read_mtok", input_mtok)
            output = values.get("output_mtok", 0.0)  # embeddings: no output tokens to price
        prices.append(
            Price(
                model=model,
                valid_from=None if index == 0 else start,
                input_mtok=input_mtok,
                cached_input_mtok=cached,
                output_mtok=output,
                source=source,
                provider=provider.id,
            )
        )
    return tuple(prices)


def _base(value: Any) -> float:
    return float(getattr(value, "base", value))


# --- the table ------------------------------------------------------------------------------


def price_rows(
    models: Iterable[str],
    overrides: Overrides | None = None,
    discounts: dict[str, float] | None = None,
) -> list[PriceRow]:
    """The rows of `model_prices` for `models`: the override file's if it names the model,
    else the catalogue's; a model neither knows gets no row."""
    discounts = batch_discounts() if discounts is None else discounts
    rows: list[PriceRow] = []
    for model in sorted(set(models)):
        prices = overrides.prices.get(model) if overrides else None
        if prices:
            provider = next((p.provider for p in catalogue_prices(model)), DEFAULT_PROVIDER)
        else:
            prices = catalogue_prices(model)
            provider = prices[0].provider if prices else DEFAULT_PROVIDER
        for price in prices:
            rows.append(
                PriceRow(
                    provider=provider,
                    model=model,
                    valid_from=price.valid_from,
                    input_mtok=price.input_mtok,
                    cached_input_mtok=price.cached_input_mtok,
                    output_mtok=price.output_mtok,
                    batch_discount=discounts.get(provider, DEFAULT_BATCH_DISCOUNT),
                    source=price.source,
                )
            )
    return rows


def price_inputs(models: Iterable[str], overrides: Overrides | None = None) -> str:
    """Everything `price_rows` reads, as text: the same text, the same rows.

    Cheap where `price_rows` is not: a run with nothing new compares this instead of
    importing and searching the catalogue (about 0.4 s), which is fixed by its version.
    """
    try:
        catalogue = importlib.metadata.version("genai-prices")
    except importlib.metadata.PackageNotFoundError:
        catalogue = catalogue_source()
    return repr((sorted(set(models)), overrides, sorted(batch_discounts().items()), catalogue))


def table_statements(rows: list[PriceRow], dialect: str) -> list[tuple[str, list[tuple]]]:
    """SQL that replaces the table with `rows`, as (statement, parameter rows) pairs.

    Run inside the views' transaction, in `dialect`. Model names come from the API: they
    only ever travel as parameters.
    """
    from batchlens.storage.dialects import DUCKDB, transpile

    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    statements: list[tuple[str, list[tuple]]] = [
        # PostgreSQL: views outside this build (other SQL dirs, users' own) may read it
        (f"drop table if exists {TABLE}" + (" cascade" if dialect != DUCKDB else ""), []),
        (transpile(f"create table {TABLE} ({columns})", dialect), []),
    ]
    if rows:
        placeholder = "?" if dialect == DUCKDB else "%s"  # the driver's parameter style
        values = ", ".join([placeholder] * len(COLUMNS))
        statements.append(
            (
                f"insert into {TABLE} ({', '.join(COLUMNS)}) values ({values})",
                [tuple(getattr(row, name) for name in COLUMNS) for row in rows],
            )
        )
    return statements
