"""Charts for the HTML page: matplotlib drawn to inline SVG when the page is built.

SVG written at build time needs no script, no font and no network to show: the page opens
from disk, from a static server or as an e-mail attachment, and a browser has nothing to
run (so nothing to fail). Text stays text (`svg.fonttype` none), which keeps a chart at a
few kilobytes, and ids come from a fixed salt per chart, so the same data gives the same
bytes. Every function takes rows the views produced and only draws them: no metric is
computed here, and a status's label and colour come with its rows from the `statuses` view
(one colour-blind-safe palette for the page and the notebooks). Labels are plain text
(mathtext off), so a model named `$x$` draws as is; matplotlib's SVG writer escapes every
string it writes.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import matplotlib
from matplotlib.dates import AutoDateLocator, date2num, num2date
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator, PercentFormatter

from batchlens.report.format import NO_MODEL

WIDTH_IN = 12.0  # at 100 dpi: drawn for a 1280 px window, scaled to the page width
HEIGHT_IN = 4.2
STYLE = {
    "svg.fonttype": "none",
    "text.parse_math": False,  # an API string with `$` is text, not a formula
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 12,
    "figure.titlesize": 14,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "legend.fontsize": 11,
    "path.simplify": True,
}
# Colour-blind-safe (Okabe-Ito), like the statuses' colours (`statuses.colour`), for the
# series that are not statuses (models, error codes, quantiles).
ACCOUNT_COLOURS = ("#000000", "#D55E00", "#E69F00", "#009E73")  # outlines over the stack
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000", "#999999")  # fmt: skip
MARKERS_UP_TO = 62  # points in a line; beyond, markers would only blot it (and cost bytes)
_PATH_DATA = re.compile(r' d="[^"]*"')
_DECIMALS = re.compile(r"(\.\d)\d+")
_SVG_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


def _figure() -> tuple[Figure, Any]:
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    return figure, figure.add_subplot()


def _svg(figure: Figure, name: str) -> str:
    """The figure as an `<svg>` element for inline HTML: no XML prologue, fluid width."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"batchlens-{name}"}):
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    text = buffer.getvalue()
    # a tenth of a point is finer than a pixel: path data at 6 decimals is mostly noise
    element = _PATH_DATA.sub(lambda m: _DECIMALS.sub(r"\1", m.group(0)), text[text.index("<svg") :])
    return _SVG_SIZE.sub(rf'<svg\1 class="chart" role="img" aria-label="{name}"', element, count=1)


def _label(value: str) -> str:
    """matplotlib leaves a label starting with `_` out of the legend; keep it in."""
    return f" {value}" if value.startswith("_") else value


def _title(ax: Any, text: str) -> None:
    """Above the legend as well as the plot, so that a long title never runs into it."""
    ax.figure.suptitle(text, x=0.01, horizontalalignment="left")


def _time_axis(ax: Any, what: str, first: date, last: date) -> None:
    """Ticks evenly spaced, each with its day and month; the label names the whole range,
    `first` to `last` (days of the data), so both months of a window across a month's end
    are named even where no tick falls in one of them."""
    ax.xaxis.set_major_locator(DayLocator())
    ax.xaxis.set_major_formatter(DateTicks())
    ax.set_xlabel(f"{what} (UTC), {date_span(first, last)}")


def date_span(first: date, last: date) -> str:
    """The days `first` to `last` as people say them: "5 Nov to 2 Dec 2026", "4 Dec 2026"."""
    if first == last:
        return f"{first.day} {first:%b %Y}"
    start = f"{first.day} {first:%b}" + (f" {first.year}" if first.year != last.year else "")
    return f"{start} to {last.day} {last:%b %Y}"


class DayLocator(AutoDateLocator):
    """matplotlib's choice of ticks, but over days to weeks evenly spaced from the first
    midnight: its own starts again on each month's first day (29 Nov, then 1 Dec)."""

    EVEN_DAYS = (4, 100)  # spans (days) ticked every few days rather than by hours or months
    TICKS = 9

    def __init__(self) -> None:
        super().__init__(minticks=4, maxticks=12)

    def __call__(self) -> Sequence[float]:
        vmin, vmax = sorted(self.axis.get_view_interval())
        if not self.EVEN_DAYS[0] <= vmax - vmin < self.EVEN_DAYS[1]:
            return super().__call__()
        step = math.ceil((vmax - vmin) / self.TICKS)
        first = math.ceil(vmin)  # date2num's whole numbers are midnights, UTC
        return [first + step * n for n in range(int((vmax - first) // step) + 1)]


class DateTicks(Formatter):
    """Every tick says its day and month ("29 Nov", "3 Dec"), so a window across a month
    boundary names both months; the first tick and the first of a new year add the year
    ("29 Nov 2026"). An hour tick is "14:00", with its day under it where the day changes."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.format_ticks([x])[0]

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        labels, previous = [], None
        for value in values:
            moment = num2date(value)  # UTC: the page's timezone (rcParams["timezone"])
            day = f"{moment.day} {moment:%b}"
            if previous is None or moment.year != previous.year:
                day += f" {moment.year}"
            if (moment.hour, moment.minute) == (0, 0):
                labels.append(day)
            elif previous is None or moment.date() != previous.date():
                labels.append(f"{moment:%H:%M}\n{day}")
            else:
                labels.append(f"{moment:%H:%M}")
            previous = moment
        return labels


def _legend(ax: Any, handles: Sequence[Any] | None = None) -> None:
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 1:
        ax.figure.legend(handles=handles, loc="outside right upper")


def draw(name: str, build: Any, *args: Any) -> str:
    """`build(figure, ax, *args)` under the page's style, returned as inline SVG."""
    with matplotlib.rc_context(STYLE):
        figure, ax = _figure()
        build(figure, ax, *args)
        return _svg(figure, name)


# --- the charts: each takes the rows of one query of html_report ----------------------------


def active_hourly_by_status(
    figure: Figure, ax: Any, rows: list[dict], accounts_rows: list[dict], days: int
) -> None:
    """Rows: hour, status, label, colour, batches, summed over accounts and ordered by the
    lifecycle (from `active_batches_hourly_by_status` and `statuses`); `accounts_rows`:
    hour, account, active (from `active_batches_hourly`), drawn as one outline per account
    when there are several."""
    statuses = list(dict.fromkeys(row["status"] for row in rows))
    looks = {row["status"]: (row["label"], row["colour"]) for row in rows}
    hours = sorted({row["hour"] for row in rows})
    # each value holds until the next hour mark: stairs, a few paths for a year of hours
    edges = [date2num(hour) for hour in hours] + [date2num(hours[-1]) + 1 / 24]
    by_key = {(row["hour"], row["status"]): row["batches"] for row in rows}
    tops, top = [], [0.0] * len(hours)
    for status in statuses:
        top = [
            t + float(by_key.get((hour, status)) or 0) for t, hour in zip(top, hours, strict=True)
        ]
        tops.append(top)  # stacking, not a metric
    # painted from the top layer down, each filled from 0 over the one above: a band per
    # status, with half the points of bands drawn between two outlines (a year is 8,760 h)
    for index in reversed(range(len(statuses))):
        label, colour = looks[statuses[index]]
        values, steps = _runs(tops[index], edges)
        ax.stairs(values, steps, baseline=0, fill=True, color=colour, label=_label(label))
    accounts = sorted({row["account"] for row in accounts_rows})
    if len(accounts) > 1:
        for index, account in enumerate(accounts):
            mine = [row for row in accounts_rows if row["account"] == account]
            values, steps = _runs(
                [row["active"] for row in mine],
                [date2num(row["hour"]) for row in mine] + [date2num(mine[-1]["hour"]) + 1 / 24],
            )
            ax.stairs(
                values,
                steps,
                color=ACCOUNT_COLOURS[index % len(ACCOUNT_COLOURS)],
                linewidth=1.2,
                linestyle=("-", "--", ":", "-.")[index // len(ACCOUNT_COLOURS) % 4],
                label=_label(f"{account} (all active)"),
            )
    ax.xaxis_date()
    ax.set_xlim(edges[0], edges[-1])
    _title(ax, f"Active batches by status, at each UTC hour mark, last {days} d")
    ax.set_ylabel("active batches at the hour mark")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _time_axis(ax, "hour", hours[0].date(), hours[-1].date())
    _legend(ax)


def _runs(values: list[float], edges: list[float]) -> tuple[list[float], list[float]]:
    """Stairs with the steps between equal values left out: the same picture, a point per
    change instead of per hour (most hours of a year look like the hour before)."""
    kept_values, kept_edges = [], [edges[0]]
    for value, edge in zip(values, edges[1:], strict=True):
        if kept_values and kept_values[-1] == value:
            kept_edges[-1] = edge
        else:
            kept_values.append(value)
            kept_edges.append(edge)
    return kept_values, kept_edges


def outcomes_daily(
    figure: Figure, ax: Any, rows: list[dict], outcomes: list[dict], days: int
) -> None:
    """Rows: day, a count per terminal status, failure_rate (`failure_rates`' `day_total`);
    `outcomes`: status, label, colour of the terminal statuses, stacked in their order."""
    series = [(row["status"], row["label"], row["colour"]) for row in outcomes]
    _stacked_stairs(ax, rows, series)
    _title(ax, f"Terminal batches per day by outcome, and the failure rate, last {days} d")
    ax.set_ylabel("terminal batches per day")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _time_axis(ax, "day the batch was created", rows[0]["day"], rows[-1]["day"])
    rate_axis = ax.twinx()
    rate_axis.spines["right"].set_visible(True)
    rate_axis.grid(False)
    rated = [(row["day"], row["failure_rate"]) for row in rows if row["failure_rate"] is not None]
    rate_axis.plot(
        [date2num(day) for day, _ in rated],
        [rate for _, rate in rated],
        color="#000000",
        linewidth=1.2,
        label="failure rate (failed / terminal)",
        **_markers(len(rated)),
    )
    rate_axis.set_ylim(0, 1)
    rate_axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    rate_axis.set_ylabel("failure rate (% of terminal batches)")
    _legend(ax, ax.get_legend_handles_labels()[0] + rate_axis.get_legend_handles_labels()[0])


def _stacked_stairs(ax: Any, rows: list[dict], series: list[tuple[str, str, str]]) -> None:
    """One filled outline per series over consecutive days: a few paths for any number of
    days, where bars would be one element per day and series. `series`: (key, label, colour);
    a day without a row is a day with nothing."""
    first, last = rows[0]["day"], rows[-1]["day"]
    days_ = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    by_day = {row["day"]: row for row in rows}
    edges = [date2num(day) - 0.5 for day in days_] + [date2num(days_[-1]) + 0.5]
    bottom = [0.0] * len(days_)
    for key, label, colour in series:
        values = [float((by_day.get(day) or {}).get(key) or 0) for day in days_]
        top = [b + v for b, v in zip(bottom, values, strict=True)]  # stacking, not a metric
        ax.stairs(top, edges, baseline=bottom, fill=True, color=colour, label=_label(label))
        bottom = top
    ax.xaxis_date()
    ax.set_xlim(edges[0], edges[-1])


def _markers(points: int) -> dict[str, Any]:
    return {"marker": "o", "markersize": 3} if points <= MARKERS_UP_TO else {}


def durations_by_model(figure: Figure, ax: Any, rows: list[dict], days: int) -> None:
    """Rows: account, endpoint, model, batches, duration_p50_s, duration_p90_s (the report's)."""
    unit, scale = _duration_unit(max(row["duration_p90_s"] or 0 for row in rows))
    labels = [_series_name(row, rows) + f"  (n={row['batches']})" for row in rows]
    positions = range(len(rows))
    height = 0.38
    ax.barh([p - height / 2 for p in positions], [(row["duration_p50_s"] or 0) / scale
            for row in rows], height=height, color=PALETTE[0], label="p50 (median)")  # fmt: skip
    ax.barh([p + height / 2 for p in positions], [(row["duration_p90_s"] or 0) / scale
            for row in rows], height=height, color=PALETTE[5], label="p90")  # fmt: skip
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    _title(ax, f"Time in progress of completed batches by model, last {days} d")
    ax.set_xlabel(f"duration from in progress to completed ({unit})")
    ax.set_ylabel("model (batches)")
    figure.set_figheight(max(HEIGHT_IN, 1.2 + 0.42 * len(rows)))
    _legend(ax)


def durations_daily(figure: Figure, ax: Any, rows: list[dict], days: int) -> None:
    """Rows: day, account, endpoint, model, duration_p50_s (from `duration_stats_daily`)."""
    unit, scale = _duration_unit(max(row["duration_p50_s"] or 0 for row in rows))
    keys = list(dict.fromkeys((row["account"], row["endpoint"], row["model"]) for row in rows))
    for index, key in enumerate(keys):
        mine = [row for row in rows if (row["account"], row["endpoint"], row["model"]) == key]
        ax.plot(
            [row["day"] for row in mine],
            [row["duration_p50_s"] / scale for row in mine],
            linewidth=1.4,
            **_markers(len(mine)),
            color=PALETTE[index % len(PALETTE)],
            label=_label(_series_name(mine[0], rows)),
        )
    _title(ax, f"Median time in progress per day, busiest models, last {days} d")
    # one slow day would flatten every other line on a linear scale
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_ylabel(f"p50 duration ({unit}, log scale)")
    day_range = [row["day"] for row in rows]
    _time_axis(ax, "day the batch was created", min(day_range), max(day_range))
    _legend(ax)


def stacked_daily(
    figure: Figure, ax: Any, rows: list[dict], title: str, ylabel: str, value_format: Any = None
) -> None:
    """Rows: day, series, value, ordered by series; stacked per day (error codes, spend)."""
    names = list(dict.fromkeys(row["series"] for row in rows))
    by_day: dict[Any, dict[str, Any]] = {}
    for row in rows:
        by_day.setdefault(row["day"], {"day": row["day"]})[row["series"]] = row["value"]
    days_ = [by_day[day] for day in sorted(by_day)]
    _stacked_stairs(
        ax, days_, [(name, name, PALETTE[index % len(PALETTE)]) for index, name in enumerate(names)]
    )
    _title(ax, title)
    ax.set_ylabel(ylabel)
    if value_format is not None:
        ax.yaxis.set_major_formatter(FuncFormatter(value_format))
    _time_axis(ax, "day the batch was created", days_[0]["day"], days_[-1]["day"])
    _legend(ax)


def _series_name(row: dict, rows: list[dict]) -> str:
    """The model, with the endpoint and account only when they are needed to tell apart."""
    name = row["model"] or NO_MODEL
    if len({r["account"] for r in rows}) > 1:
        name = f"{row['account']}: {name}"
    same_model = {r["endpoint"] for r in rows if r["model"] == row["model"]}
    if len(same_model) > 1:
        name = f"{name} {row['endpoint']}"
    return name


def _duration_unit(largest_s: float) -> tuple[str, float]:
    if largest_s >= 3 * 3_600:
        return "hours", 3_600.0
    if largest_s >= 3 * 60:
        return "minutes", 60.0
    return "seconds", 1.0
