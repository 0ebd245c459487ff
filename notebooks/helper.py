"""What the notebooks share: one way to find the database, read the views, and plot nothing.

The notebooks only read views (docs/metrics.md); nothing here defines a metric, and the
statuses (their order, labels and colours) are the `statuses` view's. Each query opens its
own read-only connection and closes it at once, because a kernel left idle with a
connection open would hold the file and make the next `batchlens extract` exit 3. The
helper's own queries are in `sql/queries/notebooks/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from batchlens.errors import UsageError, classify
from batchlens.storage.dialects import DUCKDB, execute
from batchlens.storage.duckdb_connection import connect
from batchlens.views.build import SCHEMA, discover
from batchlens.views.queries import load

DB_ENV = "BATCHLENS_DB"
# Looked for in the working folder, then in each folder above it: Jupyter runs a notebook
# in the notebook's own folder, which is usually below the one holding the database (a
# folder from `batchlens notebooks DIR`, or notebooks/ in a checkout).
DEFAULT_NAMES = ("batchlens.duckdb", "demo.duckdb")  # the CLI's default, then `make demo`'s
SEARCH_UP = 2  # folders above: notebooks/ reaches a checkout's root; no further
VIEWS = tuple(model.name for model in discover() if model.layer == "marts")
NO_DATA = "no data yet"


def statuses() -> pd.DataFrame:
    """The `statuses` view (status, lifecycle_order, is_open, is_active, is_terminal,
    stuck_after_hours, label, colour), in lifecycle order.

    Read from the model's own SQL in a scratch database, so that it is there before any
    database is opened (and the same as every database's view: the model reads no table).
    """
    model = next(model for model in discover() if model.name == "statuses")
    with duckdb.connect() as scratch:
        # the model's own SQL under its own name (identifiers only): no query file for that
        scratch.execute(f"create schema {SCHEMA}")
        scratch.execute(f"create view {SCHEMA}.statuses as {model.sql}")
        return scratch.execute(load("notebooks/statuses")).df()


_STATUSES = statuses()
STATUSES = tuple(_STATUSES["status"])  # lifecycle order, for legends and stacking
STATUS_COLORS = dict(zip(_STATUSES["status"], _STATUSES["colour"], strict=True))
STATUS_LABELS = dict(zip(_STATUSES["status"], _STATUSES["label"], strict=True))


class NoDataError(UsageError):
    """The database cannot answer yet. Shown as its one sentence, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of the traceback (and Jupyter, nbconvert too)
        return [str(self)]


def database_path(start: Path | None = None) -> Path:
    """`$BATCHLENS_DB` (relative to the working folder), else the nearest default database.

    The nearest `batchlens.duckdb` or `demo.duckdb` in the working folder (`start`) or one
    of the two folders above it; when there is none, `batchlens.duckdb` in the working folder, which
    `open_db` then reports as missing.
    """
    start = (start or Path.cwd()).absolute()
    configured = os.environ.get(DB_ENV)
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else start / path
    for folder in (start, *start.parents[:SEARCH_UP]):
        for name in DEFAULT_NAMES:
            if (folder / name).is_file():
                return folder / name
    return start / DEFAULT_NAMES[0]


@dataclass(frozen=True)
class Database:
    """A checked batchlens database; `df` runs one query on a connection of its own.

    A DuckDB file by default; with a `target` (anything with `connect(read_only=True)` and
    a `dialect`, such as a PostgreSQL destination), the queries go there instead, written
    in DuckDB's SQL all the same and translated on the way (see `batchlens.dialects`).
    """

    path: Path
    target: Any = None

    @property
    def dialect(self) -> str:
        return DUCKDB if self.target is None else self.target.dialect

    def connect(self) -> Any:
        if self.target is not None:
            connection = self.target.connect(read_only=True)
            execute(connection, self.dialect, "set TimeZone = 'UTC'")
            return connection
        try:
            connection = connect(self.path, read_only=True)
        except duckdb.Error as exc:
            known = classify(exc)  # a writer holds the file
            reason = (known[1] if known else str(exc).splitlines()[0]).rstrip(".!")
            raise NoDataError(f"Cannot read the database {self.path}: {reason}.") from None
        connection.execute("set TimeZone = 'UTC'")  # timestamps come back in UTC
        return connection

    def df(self, sql: str, **params: Any) -> pd.DataFrame:
        connection = self.connect()
        try:
            return query_df(connection, self.dialect, sql, **params)
        finally:
            connection.close()

    def as_of(self) -> pd.Timestamp:
        """The "as of" every view uses: the start of the latest extraction."""
        return self.df(load("notebooks/as_of"))["as_of"].iloc[0]


# PostgreSQL type oids -> the pandas dtype DuckDB's `.df()` gives the same column
# (integers and booleans with a NULL get pandas' nullable dtypes, as DuckDB gives them)
_PG_DTYPES = {
    16: "bool",
    20: "int64",
    21: "int64",
    23: "int64",
    700: "float64",
    701: "float64",
    1700: "float64",
    1082: "datetime64[us]",
    1114: "datetime64[us]",
    1184: "datetime64[us, UTC]",
}


_PG_JSON = {114, 3802}  # json, jsonb: psycopg2 parses them, DuckDB hands over the text


def _json_text(value: Any) -> str:
    """JSON as DuckDB shows what the loader wrote: compact, keys sorted (orjson's sort)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def query_df(connection: Any, dialect: str, sql: str, **params: Any) -> pd.DataFrame:
    """One query (DuckDB's SQL, `$name` parameters) as a DataFrame, typed as DuckDB types it.

    On PostgreSQL the rows come from psycopg2 as Python values; the columns get the dtypes
    DuckDB's `.df()` would give them, so a notebook's code works on either database.
    """
    cursor = execute(connection, dialect, sql, params)
    if dialect == DUCKDB:
        return cursor.df()
    names = [column.name for column in cursor.description or []]
    frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
    for index, column in enumerate(cursor.description or []):
        if column.type_code in _PG_JSON:
            frame.isetitem(index, frame.iloc[:, index].map(_json_text, na_action="ignore"))
            continue
        dtype = _PG_DTYPES.get(column.type_code)
        if dtype is None:
            continue
        values = frame.iloc[:, index]
        if dtype.startswith("datetime64"):
            values = pd.to_datetime(values, utc="UTC" in dtype)
        elif dtype in ("bool", "int64") and values.isna().any():
            dtype = {"bool": "boolean", "int64": "Int64"}[dtype]
        frame.isetitem(index, values.astype(dtype))
    return frame


def open_db(path: Path | str | None = None, destination: str | None = None) -> Database:
    """The database, checked: it exists, has the views and holds batches; else one sentence.

    A DuckDB file (`path`, else `database_path()`), or the shared server a
    team loads into: `destination="postgres"` or `"ducklake"` (else `[batchlens]
    destination` / $BATCHLENS__DESTINATION), with its connection from dlt's configuration.
    """
    from batchlens.storage.target import resolve_target

    if path is None:
        try:
            target = resolve_target(destination, None, default_db=database_path())
        except UsageError as exc:
            raise NoDataError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
    else:
        target = resolve_target("duckdb", str(path))
    db = Database(target.db) if target.db is not None else Database(Path(target.label), target)
    where = target.label
    hint = f"run `make demo`, or set {DB_ENV} to a database that `batchlens extract` filled"
    if target.db is not None and not target.db.is_file():
        raise NoDataError(f"There is no database at {where}: {hint}.")
    found = set(db.df(load("notebooks/views"), schema=SCHEMA)["table_name"])
    missing = [view for view in VIEWS if view not in found]
    if missing:
        which = "" if len(missing) == len(VIEWS) else f" ({', '.join(missing)} missing)"
        raise NoDataError(
            f"The database {where} has no batchlens views{which}: run "
            f"`batchlens models` on it after an extraction."
        )
    batches = int(db.df(load("notebooks/batch_count"))["n"].iloc[0])
    if not batches:
        raise NoDataError(
            f"The database {where} holds no batches yet: run `batchlens extract` into it "
            "against an account that has some, or `make demo` for the demo."
        )
    return db


def describe(db: Database) -> str:
    """One line for the top of a notebook: which database, as of when, what it holds."""
    (row,) = db.df(load("notebooks/describe")).itertuples()
    return (
        f"{db.path}: {row.batches} batches created {row.first:%Y-%m-%d %H:%M} to "
        f"{row.last:%Y-%m-%d %H:%M} UTC, as of {db.as_of():%Y-%m-%d %H:%M} UTC"
    )


def no_data(ax: Axes, frame: pd.DataFrame) -> bool:
    """True, and says "no data yet" on the axes, when the frame has nothing to plot."""
    if not frame.empty and frame.notna().to_numpy().any():
        return False
    ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])
    return True


def stacked_bars(ax: Axes, wide: pd.DataFrame, width_days: float = 1.0) -> None:
    """One bar per row of `wide` (indexed by date), its columns stacked in their order."""
    bottom = pd.Series(0.0, index=wide.index)
    for column in wide.columns:
        values = wide[column].fillna(0).astype(float)
        color = STATUS_COLORS.get(str(column))
        label = STATUS_LABELS.get(str(column), column)
        ax.bar(wide.index, values, bottom=bottom, width=width_days, label=label, color=color)
        bottom = bottom + values
    legend_outside(ax)
    date_axis(ax)


def date_axis(ax: Axes) -> None:
    """Short date ticks that never overlap (year and month only where they change)."""
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def legend_outside(ax: Axes, **kwargs: Any) -> None:
    """The legend right of the axes, where it hides no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, **kwargs)


def strip_plot(ax: Axes, frame: pd.DataFrame, category: str, value: str, order: pd.Series) -> None:
    """Every value as a dot on its category's row, jittered so that dense rows stay readable."""
    rows = {name: row for row, name in enumerate(order)}
    y = frame[category].map(rows).to_numpy(dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(frame))  # same picture every run
    ax.scatter(frame[value], y + jitter, s=6, alpha=0.35, color="#4292c6", linewidths=0)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_ylim(len(rows) - 0.5, -0.5)


def status_legend(statuses: pd.Series, *, overdue: bool = False) -> list[Patch]:
    """Legend entries for the statuses present, in lifecycle order; `overdue`: hatched bars."""
    present = set(statuses)
    handles = [
        Patch(color=STATUS_COLORS[s], label=STATUS_LABELS[s]) for s in STATUSES if s in present
    ]
    if overdue:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="overdue"))
    return handles


def label(ax: Axes, title: str, x: str, y: str, *, percent: Literal["x", "y", ""] = "") -> None:
    """Title and axis labels (with their units) in one call; `percent`: that axis is a rate."""
    ax.set_title(title)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if percent:
        getattr(ax, f"{percent}axis").set_major_formatter(PercentFormatter(1.0))
