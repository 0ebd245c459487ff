"""What the notebooks share: one way to find the database, read the views, and plot nothing.

The notebooks only read views (docs/metrics.md); nothing here defines a metric. Each query
opens its own read-only connection and closes it at once, because a kernel left idle with
a connection open would hold the file and make the next `batchlens extract` exit 3.
"""

from __future__ import annotations

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

from .database import connect
from .errors import UsageError, classify
from .models import SCHEMA, discover

DB_ENV = "BATCHLENS_DB"
# The repo's root, found from this file (an editable install) rather than from the working
# directory: Jupyter runs a notebook in its own folder, `make notebooks` in the root.
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = REPO_ROOT / "demo.duckdb"  # what `make demo` writes
VIEWS = tuple(model.name for model in discover() if model.layer == "marts")
NO_DATA = "no data yet"
STATUSES = (  # lifecycle order, for legends and stacking
    "validating",
    "in_progress",
    "finalizing",
    "cancelling",
    "completed",
    "failed",
    "expired",
    "cancelled",
)
STATUS_COLORS = {
    "validating": "#9ecae1",
    "in_progress": "#4292c6",
    "finalizing": "#08519c",
    "cancelling": "#bdbdbd",
    "completed": "#41ab5d",
    "failed": "#d7301f",
    "expired": "#fd8d3c",
    "cancelled": "#737373",
}


class NoDataError(UsageError):
    """The database cannot answer yet. Shown as its one sentence, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of the traceback (and Jupyter, nbconvert too)
        return [str(self)]


def database_path() -> Path:
    """`$BATCHLENS_DB`, else the demo database; a relative path is taken from the repo root."""
    path = Path(os.environ.get(DB_ENV) or DEFAULT_DB).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


@dataclass(frozen=True)
class Database:
    """A checked batchlens database; `df` runs one query on a connection of its own."""

    path: Path

    def connect(self) -> duckdb.DuckDBPyConnection:
        try:
            connection = connect(self.path, read_only=True)
        except duckdb.Error as exc:
            known = classify(exc)  # a writer holds the file
            reason = (known[1] if known else str(exc).splitlines()[0]).rstrip(".!")
            raise NoDataError(f"Cannot read the database {self.path}: {reason}.") from None
        connection.execute("set TimeZone = 'UTC'")  # timestamps come back in UTC
        return connection

    def df(self, sql: str, **params: Any) -> pd.DataFrame:
        with self.connect() as connection:
            return connection.execute(sql, params or None).df()

    def as_of(self) -> pd.Timestamp:
        """The "as of" every view uses: the start of the latest extraction."""
        return self.df(f"select as_of from {SCHEMA}.as_of")["as_of"].iloc[0]


def open_db(path: Path | str | None = None) -> Database:
    """The database, checked: it exists, has the views and holds batches; else one sentence."""
    db = Database(Path(path) if path is not None else database_path())
    hint = f"run `make demo`, or set {DB_ENV} to a database that `batchlens extract` filled"
    if not db.path.is_file():
        raise NoDataError(f"There is no database at {db.path}: {hint}.")
    with db.connect() as connection:
        found = {
            name
            for (name,) in connection.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = current_database() and table_schema = ? "
                "and table_type = 'VIEW'",
                [SCHEMA],
            ).fetchall()
        }
        missing = [view for view in VIEWS if view not in found]
        if missing:
            which = "" if len(missing) == len(VIEWS) else f" ({', '.join(missing)} missing)"
            raise NoDataError(
                f"The database {db.path} has no batchlens views{which}: run "
                f"`batchlens models --db {db.path}` after an extraction."
            )
        (batches,) = connection.execute(f"select count(*) from {SCHEMA}.batch_facts").fetchone()
    if not batches:
        raise NoDataError(
            f"The database {db.path} holds no batches yet: run `batchlens extract --db "
            f"{db.path}` against an account that has some, or `make demo` for the demo."
        )
    return db


def describe(db: Database) -> str:
    """One line for the top of a notebook: which database, as of when, what it holds."""
    (row,) = db.df(
        f"select count(*) as batches, min(created_at) as first, max(created_at) as last "
        f"from {SCHEMA}.batch_facts"
    ).itertuples()
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
        ax.bar(wide.index, values, bottom=bottom, width=width_days, label=column, color=color)
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
    handles = [Patch(color=STATUS_COLORS[s], label=s) for s in STATUSES if s in present]
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
