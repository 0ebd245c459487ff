"""`batchlens report --format html`: the report as one self-contained page, with charts.

One file and nothing else: the charts are SVG drawn when the page is built (charts.py), the
style is inline, there is no script, font, image or link to fetch, and a Content Security
Policy forbids the browser to load or run anything at all. So it opens from disk, from a
static web server or as an e-mail attachment, and a hostile string that slipped past the
escaping still could not run. Every value from the API (ids, models, metadata, error
messages) is escaped where it is written, in `_text`.

Nothing here defines a metric: the sections are the terminal report's own queries
(`terminal.collect_from`), and the charts select from the views by the queries of
`sql/queries/page/` (all accounts, endpoints and models of a day together are
`failure_rates`' `day_total` grain; a status's label and colour are the `statuses` view's).
The page holds no clock time of its own, so the same database gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from batchlens import __version__
from batchlens.report import charts
from batchlens.report.format import (
    NO_CODE,
    NO_MODEL,
    OPEN_BATCHES_ORDER,
    duration,
    flags,
    rate,
    when,
)
from batchlens.report.terminal import (
    OPEN_BATCHES_SHOWN,
    check_arguments,
    collect_from,
    read_only,
    window_columns,
)
from batchlens.storage.dialects import DUCKDB
from batchlens.views.build import SCHEMA
from batchlens.views.queries import read

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
DURATION_MODELS_SHOWN = 12  # bars in the durations chart
DAILY_DURATION_MODELS = 6  # lines in the daily durations chart
TOP_SERIES = 8  # error codes or models in a stacked chart; the rest are summed as "other"
FAILING_SHOWN = 20
OPTIONAL_VIEWS = ("request_error_codes_daily", "costs_daily")  # charted when they exist

# --- reading --------------------------------------------------------------------------------


def page(db: Path, days: int = 30) -> str:
    """The page for a DuckDB file, read in one read-only session."""
    check_arguments("table", days)
    with read_only(db) as connection:
        return page_from(connection, DUCKDB, str(db), days)


def page_from(connection: Any, dialect: str, label: str, days: int = 30) -> str:
    """The page over an open connection (DuckDB's or psycopg2's); `label` names the database."""
    check_arguments("table", days)
    return render(collect_page(connection, dialect, label, days))


def collect_page(connection: Any, dialect: str, label: str, days: int) -> dict[str, Any]:
    """The report's sections plus the rows of every chart and of the failing batches."""
    data = collect_from(connection, dialect, days, label)

    def query(name: str, **params: Any) -> list[dict]:
        return read(connection, dialect, f"page/{name}", days=days, **params)

    present = _views(connection, dialect)
    failing = query("failing_batches", limit=FAILING_SHOWN)
    for row in failing:
        row["metadata"] = _metadata(row["metadata"])
    return {
        "report": data,
        "active_hourly": query("active_hourly"),
        "active_hourly_by_status": query("active_hourly_by_status"),
        "outcomes_daily": query("outcomes_daily"),
        "outcomes": read(connection, dialect, "page/outcomes"),
        "durations_daily": query("durations_daily", limit=DAILY_DURATION_MODELS),
        "failing": failing,
        "error_codes_daily": (
            query("error_codes_daily", limit=TOP_SERIES)
            if "request_error_codes_daily" in present
            else None
        ),
        "costs_daily": query("costs_daily", limit=TOP_SERIES) if "costs_daily" in present else None,
    }


def _views(connection: Any, dialect: str) -> set[str]:
    return {row["table_name"] for row in read(connection, dialect, "page/relations", schema=SCHEMA)}


def _metadata(value: Any) -> dict[str, Any] | None:
    """DuckDB returns JSON as text, psycopg2 returns jsonb as a dict: the same dict from both."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"": value}
    return value if isinstance(value, dict) else None


# --- writing --------------------------------------------------------------------------------


# --- the page -------------------------------------------------------------------------------

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #f6f7f9; color: #1d2430;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 0 0 8px; }
.meta { color: #4a5568; margin: 0 0 16px; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 8px; padding: 16px;
  margin: 16px 0; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; background: none; border: 0; padding: 0; }
.card { flex: 1 1 180px; background: #fff; border: 1px solid #dde1e7; border-radius: 8px;
  padding: 12px 16px; }
.card b { display: block; font-size: 28px; }
.card.alert b { color: #b42318; }
figure { margin: 0; }
figcaption, .note, .empty { color: #4a5568; font-size: 14px; margin: 6px 0 0; }
svg.chart { display: block; width: 100%; height: auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding: 4px 0 8px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e6e9ee;
  vertical-align: top; }
th { background: #f0f2f5; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: nowrap; }
td.message { max-width: 300px; overflow-wrap: anywhere; }
td.id { font-size: 13px; }
td.when { white-space: nowrap; }
.flag { color: #b42318; font-weight: 700; }
footer { color: #6b7280; font-size: 13px; margin-top: 24px; }
"""


def _text(value: Any) -> str:
    """Every value written into the page goes through here: escaped, quotes included."""
    return escape("" if value is None else str(value), quote=True)


def _table(
    caption: str,
    columns: list[str],
    body: Iterable[list[tuple[str, str]]],
    numeric: Iterable[str] = (),
) -> str:
    """`body` rows are (css class, already escaped HTML) cells."""
    numbers = set(numeric)
    head = "".join(
        f'<th class="num">{_text(c)}</th>' if c in numbers else f"<th>{_text(c)}</th>"
        for c in columns
    )
    lines = [
        "<tr>" + "".join(f'<td class="{kind}">{cell}</td>' for kind, cell in row) + "</tr>"
        for row in body
    ]
    if not lines:
        return f'<p class="empty">{_text(caption)}: none.</p>'
    return (
        f'<div class="scroll"><table><caption>{_text(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table></div>"
    )


def _cell(value: Any, kind: str = "") -> tuple[str, str]:
    return kind, _text(value)


def _num(value: Any) -> tuple[str, str]:
    return "num", _text("-" if value is None else f"{value:,}")


def _section(section_id: str, title: str, *parts: str) -> str:
    return f'<section id="{section_id}"><h2>{_text(title)}</h2>{"".join(parts)}</section>'


def _chart(name: str, caption: str, rows_: list[dict] | None, build: Any, *args: Any) -> str:
    if not rows_:
        return f'<p class="empty" data-chart="{name}">{_text(caption)}: no data yet.</p>'
    svg = charts.draw(name, build, rows_, *args)
    return f'<figure data-chart="{name}">{svg}<figcaption>{_text(caption)}</figcaption></figure>'


def render(page_data: dict[str, Any]) -> str:
    data = page_data["report"]
    days = data["days"]
    open_batches = data["open_batches"]
    source = "" if data["as_of_source"] == "extraction" else " (no extraction recorded)"
    title = f"batchlens report: {data['database']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_text(title)}</title><style>{STYLE}</style></head><body><main>",
        "<header><h1>OpenAI Batch API jobs</h1>",
        f'<p class="meta">Database {_text(data["database"])}, as of '
        f"{_text(when(data['as_of']))} UTC{_text(source)} (the latest extraction). "
        "All times and days are UTC; windows are UTC days up to that day.</p></header>",
        _cards(data),
        _section(
            "active",
            "What is running",
            _chart(
                "active_hourly",
                "Batches active at each UTC hour mark, stacked by the status they were in then "
                "(active_batches_hourly_by_status, all accounts); with several accounts, a line "
                "per account shows its own total (active_batches_hourly).",
                page_data["active_hourly_by_status"],
                charts.active_hourly_by_status,
                page_data["active_hourly"],
                days,
            ),
            _active_table(data),
        ),
        _section(
            "outcomes",
            "What finished, and how",
            _chart(
                "outcomes_daily",
                "Bars: terminal batches by the UTC day they were created, by outcome. Line: "
                "failed / terminal that day (failure_rates_daily, all accounts, endpoints and "
                "models).",
                page_data["outcomes_daily"],
                charts.outcomes_daily,
                page_data["outcomes"],
                days,
            ),
            _windows_table(data),
        ),
        _section(
            "stuck",
            "Open and stuck batches",
            _open_table(data, open_batches),
        ),
        _section(
            "failures",
            "What failed, and why",
            _failing_table(page_data["failing"], days),
            _error_codes_table(data),
            _optional_chart(
                "error_codes_daily",
                page_data["error_codes_daily"],
                "Failed requests per UTC creation day by error code, from the batches' error "
                "files (request_error_codes_daily).",
                f"Failed requests by error code, last {days} d",
                "failed requests per day",
            ),
        ),
        _section(
            "durations",
            "How long things take",
            _chart(
                "durations_by_model",
                "p50 and p90 time from in progress to completed, per model, over the window "
                f"(batch_facts; the {DURATION_MODELS_SHOWN} models with most batches).",
                data["durations"][:DURATION_MODELS_SHOWN],
                charts.durations_by_model,
                days,
            ),
            _chart(
                "durations_daily",
                "The daily p50 of the same duration for the busiest models (duration_stats_daily).",
                page_data["durations_daily"],
                charts.durations_daily,
                days,
            ),
            _durations_table(data),
        ),
    ]
    parts.append(
        _section(
            "spend",
            "What it cost",
            _optional_chart(
                "costs_daily",
                page_data["costs_daily"],
                "Spend per UTC creation day by model, at batch prices (costs_daily; "
                "batches without a price are not in it).",
                f"Spend by model, last {days} d (USD)",
                "spend per day (USD)",
                lambda value, _: f"${value:,.2f}",
            ),
            _spend_table(data),
            _unpriced_table(data),
        )
    )
    parts.append(
        _section(
            "requests",
            "Why requests failed",
            _request_codes_table(data),
            _all_failed_table(data),
        )
    )
    parts.extend(_extra_sections(data))
    parts.append(
        f"<footer>Built by batchlens {_text(__version__)} from the views of schema "
        f"{_text(SCHEMA)}; every number is a view's (docs/metrics.md). "
        f"Rebuild with <code>batchlens report --format html --output PATH</code>.</footer>"
    )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _optional_chart(
    name: str,
    rows_: list[dict] | None,
    caption: str,
    title: str,
    ylabel: str,
    value_format: Any = None,
) -> str:
    if rows_ is None:  # the view does not exist in this database
        return ""
    return _chart(name, caption, rows_, charts.stacked_daily, title, ylabel, value_format)


def _cards(data: dict[str, Any]) -> str:
    open_batches = data["open_batches"]
    cards = [
        ("Open batches", open_batches["total"], False),
        (
            "Overdue: open past their expiry time",
            open_batches["overdue"],
            open_batches["overdue"] > 0,
        ),
        (
            f"Stuck: finalizing > {data['long_finalizing_hours']:g} h",
            open_batches["long_finalizing"],
            open_batches["long_finalizing"] > 0,
        ),
    ]
    cards += [
        (f"Failure rate, last {row['days']} d, {row['account']}", rate(row["failure_rate"]),
         False)
        for row in data["windows"]
        if row["days"] in (1, 7)
    ]  # fmt: skip
    return '<section class="cards">' + "".join(
        f'<div class="card{" alert" if alert else ""}"><b>{_text(value)}</b>{_text(label)}</div>'
        for label, value, alert in cards
    ) + "</section>"  # fmt: skip


def _active_table(data: dict[str, Any]) -> str:
    body = [
        [
            _cell(row["account"]),
            _cell(row["status"]),
            _num(row["batches"]),
            _cell(when(row["oldest_created_at"])),
        ]
        for row in data["active"]
    ]
    return _table(
        "Open now, by status (active_batches)",
        ["account", "status", "batches", "oldest created (UTC)"],
        body,
        numeric=["batches"],
    )


def _windows_table(data: dict[str, Any]) -> str:
    # the counts and rates the report's windows query chose, in its order
    shown = window_columns(data["windows"])
    body = [
        [
            _cell(f"{row['days']} d"),
            _cell(row["account"]),
            *(
                _cell(rate(row[name]), "num") if name.endswith("_rate") else _num(row[name])
                for name in shown
            ),
        ]
        for row in data["windows"]
    ]
    headers = [name.replace("_", " ") for name in shown]
    return _table(
        "Terminal batches by window (created in the last N UTC days)",
        ["last", "account", *headers],
        body,
        numeric=headers,
    )


def _open_table(data: dict[str, Any], open_batches: dict[str, Any]) -> str:
    shown = open_batches["batches"][:OPEN_BATCHES_SHOWN]
    more = open_batches["total"] - len(shown)
    body = [
        [
            ("flag", _text(flags(row))),
            _cell(row["batch_id"], "id"),
            _cell(row["account"]),
            _cell(row["status"]),
            _cell(when(row["status_since"]), "when"),
            _cell(f"{row['hours_in_status']:.1f}", "num"),
            _cell(when(row["expires_at"]), "when"),
        ]
        for row in shown
    ]
    caption = (
        f"Open batches: {open_batches['total']}, {open_batches['overdue']} overdue, "
        f"{open_batches['long_finalizing']} finalizing > {data['long_finalizing_hours']:g} h "
        f"(STUCK); {OPEN_BATCHES_ORDER}" + (f"; {more} more not shown" if more > 0 else "")
    )
    return _table(
        caption,
        ["flag", "batch", "account", "status", "since (UTC)", "hours in status", "expires (UTC)"],
        body,
        numeric=["hours in status"],
    )


def _failing_table(failing: list[dict], days: int) -> str:
    body = [
        [
            _cell(row["batch_id"], "id"),
            _cell(row["account"]),
            _cell(row["status"]),
            _cell(row["model"] or NO_MODEL),
            _cell(when(row["created_at"]), "when"),
            _cell(
                "-"
                if row["request_total"] is None
                else f"{row['request_failed'] or 0:,} of {row['request_total']:,}",
                "num",
            ),
            _cell(
                ": ".join(
                    part for part in (row["first_error_code"], row["first_error_message"]) if part
                ),
                "message",
            ),
            _cell(_metadata_text(row["metadata"]), "message"),
        ]
        for row in failing
    ]
    return _table(
        f"Failed or expired batches, and finished batches with failed requests, created in "
        f"the last {days} d (newest {FAILING_SHOWN})",
        ["batch", "account", "status", "model", "created (UTC)", "failed requests",
         "first error", "metadata"],
        body,
        numeric=["failed requests"],
    )  # fmt: skip


def _metadata_text(metadata: dict[str, Any] | None) -> str:
    if not metadata:
        return ""
    # sorted: PostgreSQL's jsonb keeps its keys in an order of its own
    return ", ".join(
        f"{key}: {value}" if key else str(value) for key, value in sorted(metadata.items())
    )


def _error_codes_table(data: dict[str, Any]) -> str:
    body = [
        [
            _cell(row["code"] or NO_CODE),
            _num(row["entries"]),
            _num(row["batches"]),
            _cell(row["example_message"] or "", "message"),
        ]
        for row in data["error_codes"]
    ]
    return _table(
        f"Most common batch error codes, last {data['days']} d (batch_errors)",
        ["code", "entries", "batches", "latest message"],
        body,
        numeric=["entries", "batches"],
    )


def _durations_table(data: dict[str, Any]) -> str:
    body = [
        [
            _cell(row["account"]),
            _cell(row["endpoint"] or "-"),
            _cell(row["model"] or NO_MODEL),
            _num(row["batches"]),
            _cell(duration(row["duration_p50_s"]), "num"),
            _cell(duration(row["duration_p90_s"]), "num"),
        ]
        for row in data["durations"]
    ]
    return _table(
        f"Completed batches, last {data['days']} d: time from in progress to completed",
        ["account", "endpoint", "model", "batches", "p50", "p90"],
        body,
        numeric=["batches", "p50", "p90"],
    )


def _spend_table(data: dict[str, Any]) -> str:
    body = [
        [
            _cell(f"{row['days']} d"),
            _cell(row["account"]),
            _cell(row["model"] or NO_MODEL),
            _num(row["priced_batches"]),
            _num(row["unpriced_batches"]),
            _cell(_usd(row["cost_usd"]), "num"),
            _cell(_usd(row["saved_usd"]), "num"),
        ]
        for row in data["spend"]["windows"]
    ]
    return _table(
        "Spend by window, account and model, at batch prices (a batch without a price "
        "has no cost, rather than a cost of 0)",
        ["last", "account", "model", "priced batches", "unpriced batches", "cost (USD)",
         "saved by batching (USD)"],
        body,
        numeric=["priced batches", "unpriced batches", "cost (USD)", "saved by batching (USD)"],
    )  # fmt: skip


def _unpriced_table(data: dict[str, Any]) -> str:
    body = [
        [
            _cell(row["account"]),
            _cell(row["model"] or NO_MODEL),
            _num(row["batches"]),
            _cell(row["latest_batch_id"], "id"),
            _cell(
                "no model named: a prices file cannot price it"
                if row["model"] is None
                else "add it to a prices file (batchlens prices)"
            ),
        ]
        for row in data["spend"]["unpriced_models"]
    ]
    return _table(
        f"Models without a price, last {data['days']} d",
        ["account", "model", "batches", "latest batch", "what to do"],
        body,
        numeric=["batches"],
    )


def _request_codes_table(data: dict[str, Any]) -> str:
    body = [
        [
            _cell(row["error_code"] or NO_CODE),
            _num(row["requests"]),
            _num(row["batches"]),
            _cell(row["example_message"] or "", "message"),
        ]
        for row in data["request_errors"]["codes"]
    ]
    return _table(
        f"Most frequent request error codes, last {data['days']} d (from the batches' error files)",
        ["error code", "failed requests", "batches", "example message"],
        body,
        numeric=["failed requests", "batches"],
    )


def _all_failed_table(data: dict[str, Any]) -> str:
    body = [
        [
            _cell(row["batch_id"], "id"),
            _cell(row["account"]),
            _cell(row["status"]),
            _cell(when(row["created_at"]), "when"),
            _num(row["request_total"]),
            _cell(row["top_request_error_code"] or "-"),
        ]
        for row in data["request_errors"]["all_failed_batches"]
    ]
    return _table(
        f"Batches where every request failed, created in the last {data['days']} d",
        ["batch", "account", "status", "created (UTC)", "requests", "most common error code"],
        body,
        numeric=["requests"],
    )


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


# Sections the terminal report has that this page draws above; anything else the report
# gains later is shown as a plain table, so the page never silently lacks a section.
_DRAWN = {
    "database", "as_of", "as_of_source", "days", "long_finalizing_hours", "active",
    "windows", "durations", "open_batches", "error_codes", "spend", "request_errors",
}  # fmt: skip


def _extra_sections(data: dict[str, Any]) -> list[str]:
    return [
        _section(f"report-{key}", _words(key).capitalize(), _generic(key, value))
        for key, value in data.items()
        if key not in _DRAWN
    ]


def _generic(key: str, value: Any) -> str:
    if isinstance(value, list) and all(isinstance(row, dict) for row in value):
        columns = list(dict.fromkeys(name for row in value for name in row))
        body = [[_generic_cell(name, row.get(name)) for name in columns] for row in value]
        return _table(_words(key), [_words(name) for name in columns], body)
    if isinstance(value, dict):
        return "".join(
            _generic(f"{key} {name}", item)
            if isinstance(item, list | dict)
            else f"<p>{_text(_words(name))}: {_generic_cell(name, item)[1]}</p>"
            for name, item in value.items()
        )
    return f"<p>{_generic_cell(key, value)[1]}</p>"


# a column's unit, said in words: `cost_usd` is "cost (USD)"
_UNITS = {"_usd": " (USD)", "_s": " (seconds)", "_at": " (UTC)"}


def _words(name: str) -> str:
    """A column or key name of the JSON as a header a user reads."""
    if name == "days":
        return "last"
    for suffix, unit in _UNITS.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].replace("_", " ") + unit
    return name.replace("_", " ")


def _generic_cell(name: str, value: Any) -> tuple[str, str]:
    if name == "days" and isinstance(value, int):
        return _cell(f"{value} d")
    if isinstance(value, bool) or value is None:
        return _cell("yes" if value else "-" if value is None else "no")
    if isinstance(value, datetime):
        return _cell(when(value))
    if isinstance(value, float):
        if name.endswith("_rate"):
            return _cell(rate(value), "num")
        if name.endswith("_s"):
            return _cell(duration(value), "num")
        if name.endswith("_usd"):
            return _cell(f"${value:,.2f}", "num")
        return _cell(f"{value:,.4g}", "num")
    if isinstance(value, int):
        return _num(value)
    if isinstance(value, dict | list):
        return _cell(json.dumps(value, default=str), "message")
    return _cell(value, "message" if isinstance(value, str) and len(value) > 40 else "")
