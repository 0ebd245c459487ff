"""The HTML report page: its structure, its data, hostile strings, the CLI, size, a browser.

The history is the simulator's, placed just before the wall clock (the page is anchored at
"as of", the start of the extraction), with a few batches carrying `<script>` in their
metadata, error message and model name. Expected chart rows are counted in plain Python
from the simulator's own batches.
"""

from __future__ import annotations

import io
import itertools
import re
import shutil
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from chromium import file_url, find_chromium, load
from PIL import Image, ImageStat

from batchlens.config import Account
from batchlens.output import write_atomically
from batchlens.report.page import collect_page, page
from batchlens.run.extract import run_extraction
from batchlens.simulator.history import generate_history, render
from batchlens.simulator.server import Simulator
from batchlens.storage.duckdb_connection import connect
from helpers import KEY, cli_env, extract, run_cli

HOUR, DAY = 3_600, 86_400
HOSTILE = "<script>alert(1)</script>"
NOW = int(time.time()) - HOUR
CHARTS = {"active_hourly", "outcomes_daily", "durations_by_model", "durations_daily"}
# charted when their views exist (they do now: the simulated history has request errors and
# prices); test_optional_views_are_charted replaces them with hand-made ones
OPTIONAL_CHARTS = {"error_codes_daily", "costs_daily"}
TERMINAL = ("completed", "failed", "expired", "cancelled")
ACTIVE = ("validating", "in_progress", "finalizing")
ENDS = ("completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at")


class Page(HTMLParser):
    """Tags, text and charts of a page, as a browser's parser sees them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.texts: list[str] = []
        self.charts: dict[str, Counter[str]] = {}  # chart name -> tags inside its figure
        self.empty_charts: set[str] = set()
        self._chart: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        named = dict(attrs).get("data-chart")
        if tag == "figure" and named:
            self._chart = named
            self.charts[named] = Counter()
        elif tag == "p" and named:
            self.empty_charts.add(named)
        elif self._chart:
            self.charts[self._chart][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._chart = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def external_references(text: str) -> list[str]:
    patterns = (
        r"""(?:src|href|action|poster|srcset)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""",
        r"""url\(\s*["']?\s*(?:https?:)?//[^)]*""",
        r"@import",
    )
    return [match for pattern in patterns for match in re.findall(pattern, text, re.IGNORECASE)]


def hostile_history_into(db: Path) -> Simulator:
    """400 batches over the 60 days before NOW, and hostile ones two days back."""
    sim = Simulator(batches=400, seed=3, api_key=KEY, now=NOW - 2 * DAY)
    with sim:
        sim.add_batches(
            1,
            scenario="failed_validation",
            metadata={"note": HOSTILE},
            errors=({"code": "invalid_json", "message": f"Line 1 {HOSTILE}", "param": None,
                     "line": 1},),
        )  # fmt: skip
        sim.add_batches(15, scenario="completed", model=f"gpt-{HOSTILE}")
        sim.advance(2 * DAY - HOUR)
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=KEY))
    return sim


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    db = tmp_path_factory.mktemp("page") / "batches.duckdb"
    sim = hostile_history_into(db)
    return db, sim.visible()


@pytest.fixture(scope="module")
def built(loaded: tuple[Path, list[dict]]) -> tuple[str, dict[str, Any]]:
    db, _ = loaded
    with connect(db, read_only=True) as connection:
        data = collect_page(connection, "duckdb", str(db), 30)
    return page(db, days=30), data


# --- structure ------------------------------------------------------------------------------


def test_every_chart_is_there_with_data(built: tuple[str, dict]) -> None:
    text, _ = built
    parsed = Page(text)
    assert parsed.tags["html"] == 1 and parsed.tags["table"] >= 5
    assert set(parsed.charts) == CHARTS | OPTIONAL_CHARTS, parsed.empty_charts
    for name, tags in parsed.charts.items():
        assert tags["svg"] == 1, name
        assert tags["path"] > 20, (name, tags)  # axes, ticks and the data
        assert tags["text"] > 5, (name, tags)  # title, labels, ticks
    for words in ("UTC", "Active batches by status", "active batches at the hour mark",
                  "terminal batches per day", "failure rate"):  # fmt: skip
        assert words in parsed.text, words


def test_nothing_is_loaded_from_anywhere(built: tuple[str, dict]) -> None:
    text, _ = built
    parsed = Page(text)
    assert external_references(text) == []
    for tag in ("script", "link", "img", "iframe", "object", "embed", "base", "form"):
        assert parsed.tags[tag] == 0, tag
    assert "default-src 'none'" in text  # and the browser is told to load nothing anyway


def test_the_external_reference_check_can_fail() -> None:
    for bad in (
        '<img src="https://cdn.example/x.png">',
        "<link href='//fonts.example/css' rel=stylesheet>",
        "<style>body{background:url( http://x/y.png)}</style>",
        "<style>@import 'x.css';</style>",
    ):
        assert external_references(bad), bad


def test_hostile_strings_are_text(built: tuple[str, dict]) -> None:
    text, _ = built
    parsed = Page(text)
    assert parsed.tags["script"] == 0
    assert f"note: {HOSTILE}" in parsed.texts  # metadata, in the failing batches table
    assert f"invalid_json: Line 1 {HOSTILE}" in parsed.texts  # the error message
    assert f"gpt-{HOSTILE}" in parsed.texts  # the model, in the durations table
    # and in the charts' SVG text (tick labels, legends), escaped by matplotlib
    assert sum(f"gpt-{HOSTILE}" in part for part in parsed.texts) >= 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


class Headings(HTMLParser):
    """The words a reader scans: section headings, table captions and headers, card labels,
    and each table's rows of cells."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, list[str]] = {"h2": [], "th": [], "caption": [], "card": []}
        self.tables: dict[str, list[list[str]]] = {}  # caption -> rows of cell texts
        self._open: str | None = None
        self._caption = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "th", "caption"):
            self._open, self.found[tag] = tag, [*self.found[tag], ""]
        elif tag == "div" and "card" in (dict(attrs).get("class") or "").split():
            self._open, self.found["card"] = "card", [*self.found["card"], ""]
        elif tag == "tr":
            self._row = []
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._caption = self.found["caption"][-1]
            self.tables[self._caption] = []
        if tag in ("h2", "th", "caption") or (tag == "div" and self._open == "card"):
            self._open = None
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[self._caption].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._open == "card" and self.found["card"]:
            self.found["card"][-1] += data
        elif self._open:
            self.found[self._open][-1] += data
        if self._cell is not None:
            self._cell.append(data)


def table_starting(parsed: Headings, words: str) -> list[list[str]]:
    (caption,) = [caption for caption in parsed.tables if caption.startswith(words)]
    return parsed.tables[caption]


def test_every_heading_and_column_reads_as_words(built: tuple[str, dict]) -> None:
    """No JSON key or column name (`priced_batches`, "spend windows", "days 7") on the page."""
    text, data = built
    parsed = Headings(text)
    named = [t for t in parsed.found["h2"] + parsed.found["th"] + parsed.found["card"] if "_" in t]
    assert not named, named
    # a caption may name the view its rows come from, in parentheses, for those who query it
    captions = [re.sub(r"\([^)]*\)", "", caption) for caption in parsed.found["caption"]]
    assert not [caption for caption in captions if "_" in caption], captions
    assert {"What it cost", "Why requests failed"} <= set(parsed.found["h2"])
    spend = table_starting(parsed, "Spend by window")
    assert len(spend) == len(data["report"]["spend"]["windows"]) > 0
    assert {row[0] for row in spend} <= {f"{days} d" for days in (1, 7, 30)}
    codes = table_starting(parsed, "Most frequent request error codes")
    assert [row[0] for row in codes] == [
        row["error_code"] for row in data["report"]["request_errors"]["codes"]
    ]
    every = table_starting(parsed, "Batches where every request failed")
    assert [row[0] for row in every] == [
        row["batch_id"] for row in data["report"]["request_errors"]["all_failed_batches"]
    ]
    for header in ("priced batches", "cost (USD)", "saved by batching (USD)", "failed requests",
                   "most common error code"):  # fmt: skip
        assert header in parsed.found["th"], header


MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
DAY_TICK = re.compile(rf"^(?:\d\d:\d\d)?\s*(\d{{1,2}}) ({MONTHS})(?: (\d{{4}}))?$")


def test_date_ticks_name_the_month_and_the_year() -> None:
    from matplotlib.dates import date2num

    from batchlens.report.charts import DateTicks

    days = [datetime(2026, 11, 26, tzinfo=UTC) + timedelta(days=3 * n) for n in range(4)]
    assert DateTicks().format_ticks([date2num(day) for day in days]) == [
        "26 Nov 2026", "29 Nov", "2 Dec", "5 Dec",
    ]  # fmt: skip
    new_year = [datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)]
    assert DateTicks().format_ticks([date2num(day) for day in new_year]) == [
        "31 Dec 2026", "1 Jan 2027",
    ]  # fmt: skip
    hours = [datetime(2026, 12, 4, 18, tzinfo=UTC) + timedelta(hours=3 * n) for n in range(3)]
    assert DateTicks().format_ticks([date2num(hour) for hour in hours]) == [
        "18:00\n4 Dec 2026", "21:00", "5 Dec",
    ]  # fmt: skip


def test_day_ticks_are_evenly_spaced_across_a_month_end() -> None:
    """matplotlib's own day ticks start again on the 1st: "29 Nov" and "1 Dec" side by side."""
    from matplotlib.dates import date2num
    from matplotlib.figure import Figure

    from batchlens.report.charts import DateTicks, DayLocator

    ax = Figure().add_subplot()
    ax.set_xlim(
        date2num(datetime(2026, 11, 5, tzinfo=UTC)), date2num(datetime(2026, 12, 5, tzinfo=UTC))
    )
    locator = DayLocator()
    locator.set_axis(ax.xaxis)
    ticks = list(locator())
    assert len({round(b - a, 6) for a, b in itertools.pairwise(ticks)}) == 1, ticks
    labels = DateTicks().format_ticks(ticks)
    assert labels[0] == "5 Nov 2026" and any(label.endswith(" Dec") for label in labels)


def test_date_axes_show_the_month_and_the_year(built: tuple[str, dict]) -> None:
    """Each tick says its day and month, the first its year too, and the axis names the
    range, so a window across a month's end names both months."""
    from batchlens.report.charts import date_span

    text, data = built
    for chart, rows in (("active_hourly", "active_hourly"), ("outcomes_daily", "outcomes_daily"),
                        ("durations_daily", "durations_daily")):  # fmt: skip
        figure = text[text.index(f'data-chart="{chart}"') :]
        texts = [part.strip() for part in Page(figure[: figure.index("</figure>")]).texts]
        ticks = [match for part in texts if (match := DAY_TICK.match(part))]
        assert len(ticks) >= 4, (chart, texts)
        assert ticks[0][3] is not None and all(tick[3] is None for tick in ticks[1:]), ticks
        days = [row["hour"].date() if "hour" in row else row["day"] for row in data[rows]]
        span = date_span(min(days), max(days))
        assert any(part.endswith(f"(UTC), {span}") for part in texts), (chart, span, texts)
        if min(days).month != max(days).month:
            assert " to " in span and f"{min(days):%b}" in span and f"{max(days):%b}" in span
    assert date_span(date(2026, 11, 5), date(2026, 12, 2)) == "5 Nov to 2 Dec 2026"
    assert date_span(date(2026, 12, 20), date(2027, 1, 5)) == "20 Dec 2026 to 5 Jan 2027"
    assert date_span(date(2026, 12, 4), date(2026, 12, 4)) == "4 Dec 2026"


def test_the_page_and_the_terminal_say_the_same_order(
    loaded: tuple[Path, list[dict]], built: tuple[str, dict]
) -> None:
    from batchlens.report.format import OPEN_BATCHES_ORDER
    from batchlens.report.terminal import collect, to_table

    text, data = built
    said = " ".join(Page(text).text.split())
    assert f"(STUCK); {OPEN_BATCHES_ORDER}" in said and "overdue first" not in said
    terminal = " ".join(to_table(collect(loaded[0], 30)).split())
    assert f"({OPEN_BATCHES_ORDER})" in terminal
    # and it is the order the rows come in (sql/queries/report/open_batches.sql)
    rows = data["report"]["open_batches"]["batches"]
    keys = [(not r["is_long_finalizing"], not r["is_overdue"], r["created_at"]) for r in rows]
    assert keys == sorted(keys) and OPEN_BATCHES_ORDER.startswith("stuck first, then overdue")


def test_chart_rows_match_the_simulated_batches(
    loaded: tuple[Path, list[dict]], built: tuple[str, dict]
) -> None:
    _, visible = loaded
    _, data = built
    as_of: datetime = data["report"]["as_of"]
    first_day = as_of.date() - timedelta(days=29)

    def created_day(batch: dict) -> date:
        return datetime.fromtimestamp(batch["created_at"], UTC).date()

    expected: dict[date, Counter[str]] = {}
    for batch in visible:
        if batch["status"] in TERMINAL and first_day <= created_day(batch) <= as_of.date():
            expected.setdefault(created_day(batch), Counter())[batch["status"]] += 1
    got = {row["day"]: row for row in data["outcomes_daily"]}
    assert set(got) == set(expected)
    for day, counts in expected.items():
        assert {status: got[day][status] for status in TERMINAL} == {
            status: counts[status] for status in TERMINAL
        }, day
        assert got[day]["terminal"] == sum(counts.values())
        assert got[day]["failure_rate"] == pytest.approx(counts["failed"] / sum(counts.values()))

    # one row per hour mark, from the first hour of the window to the hour of "as of"
    hours = [row["hour"] for row in data["active_hourly"]]
    assert len(hours) == 29 * 24 + as_of.hour + 1
    assert hours[-1] == as_of.replace(minute=0, second=0, microsecond=0)

    # and per status at each of those hour marks, read off the batches' own timestamps
    by_status = {(row["hour"], row["status"]): row["batches"]
                 for row in data["active_hourly_by_status"]}  # fmt: skip
    assert len(by_status) == len(data["active_hourly_by_status"]) == 3 * len(hours)
    expected_status: Counter[tuple[datetime, str]] = Counter()
    for hour in hours:
        for batch in visible:
            status = status_at(batch, hour.timestamp())
            if status is not None:
                expected_status[(hour, status)] += 1
    assert {key: n for key, n in by_status.items() if n} == dict(expected_status)
    assert sum(expected_status.values()) > 100  # the window has busy hours
    assert {status for _, status in expected_status} == set(ACTIVE)
    assert [row["status"] for row in data["active_hourly_by_status"][:: len(hours)]] == list(
        ACTIVE
    )  # the stack in the lifecycle's order

    # the failing batches: terminal, failed/expired or with failed requests, newest first
    failing = [
        b for b in visible
        if b["status"] in TERMINAL and created_day(b) >= first_day
        and (b["status"] in ("failed", "expired") or (b["request_counts"] or {}).get("failed"))
    ]  # fmt: skip
    failing.sort(key=lambda b: (-b["created_at"], b["id"]))
    assert [row["batch_id"] for row in data["failing"]] == [b["id"] for b in failing][:20]


def status_at(batch: dict, instant: float) -> str | None:
    """Which active status `batch` was in at `instant`; a status without its timestamp was
    skipped. Ended = the earliest end timestamp of a batch no longer active."""
    ends = [batch[name] for name in ENDS if batch.get(name) is not None]
    ended = None if batch["status"] in ACTIVE or not ends else max(min(ends), batch["created_at"])
    if batch["created_at"] > instant or (ended is not None and ended <= instant):
        return None
    finalizing = next((t for t in (batch.get("finalizing_at"), ended) if t is not None), None)
    in_progress = next(
        (t for t in (batch.get("in_progress_at"), batch.get("finalizing_at"), ended)
         if t is not None), None
    )  # fmt: skip
    if finalizing is not None and finalizing <= instant:
        return "finalizing"
    if in_progress is not None and in_progress <= instant:
        return "in_progress"
    return "validating"


def test_active_chart_has_a_series_per_status(built: tuple[str, dict]) -> None:
    text, data = built
    figure = text[text.index('data-chart="active_hourly"') :]
    svg = figure[: figure.index("</figure>")]
    legend = {part for part in Page(svg).texts}
    assert {"validating", "in progress", "finalizing"} <= legend
    assert "(UTC)" in " ".join(legend)
    # one filled outline per status, each over every hour of the window
    assert svg.count('id="patch_') >= 3
    assert all(
        sum(r["batches"] for r in data["active_hourly_by_status"] if r["status"] == s) > 0
        for s in ACTIVE
    )


def test_optional_views_are_charted(loaded: tuple[Path, list[dict]], tmp_path: Path) -> None:
    """request_error_codes_daily and costs_daily (other issues' views), made by hand here."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(loaded[0], db)
    with connect(db) as connection:
        for view in ("request_error_codes_daily", "costs_daily"):  # the real ones step aside
            connection.execute(f"drop view if exists openai_batches.{view}")
        (as_of,) = connection.execute(
            "select cast(as_of at time zone 'UTC' as date) from openai_batches.as_of"
        ).fetchone()
        codes = [f"('{as_of}'::date - {d}, 'default', '/v1/chat/completions', 'gpt-4o-mini', "
                 f"'code_{n:02d}', {100 - n}, 1, 'message {n}')"
                 for n in range(10) for d in (0, 1)]  # fmt: skip
        codes.append(f"('{as_of}'::date, 'default', '/v1/x', 'm', '{HOSTILE}', 1, 1, '')")
        connection.execute(
            "create view openai_batches.request_error_codes_daily as select * from (values "
            + ", ".join(codes)
            + ") as t(day, account, endpoint, model, error_code, requests, batches, "
            "example_message)"
        )
        connection.execute(
            "create view openai_batches.costs_daily as select * from (values "
            f"('{as_of}'::date, 'default', '/v1/embeddings', 'small', 1.5, 1.5, 1, 0), "
            f"('{as_of}'::date, 'default', '/v1/responses', 'big', 20.25, 20.25, 1, 0), "
            f"('{as_of}'::date - 40, 'default', '/v1/responses', 'big', 99.0, 99.0, 1, 0)"
            ") as t(day, account, endpoint, model, cost_usd, saved_usd, priced_batches, "
            "unpriced_batches)"
        )
    with connect(db, read_only=True) as connection:
        data = collect_page(connection, "duckdb", str(db), 30)
    # the 8 largest codes by name, the other three (code_08, code_09, the hostile one) summed
    expected = [(as_of - timedelta(days=d), f"code_{n:02d}", 100 - n) for n in range(8)
                for d in (1, 0)]  # fmt: skip
    expected += [(as_of - timedelta(days=1), "other codes", 92 + 91),
                 (as_of, "other codes", 92 + 91 + 1)]  # fmt: skip
    got = [(row["day"], row["series"], row["value"]) for row in data["error_codes_daily"]]
    assert got == expected
    assert [(row["series"], row["value"]) for row in data["costs_daily"]] == [
        ("big", 20.25),
        ("small", 1.5),
    ]
    parsed = Page(page(db, days=30))
    assert set(parsed.charts) == CHARTS | OPTIONAL_CHARTS
    assert parsed.tags["script"] == 0


def test_a_database_without_batches_in_the_window(sim: Simulator, db: Path) -> None:
    """The conftest simulator's history ends on 2026-01-01: every chart says so, nothing breaks."""
    run_extraction(db, Account(name="default", base_url=sim.url, api_key=KEY))
    parsed = Page(page(db, days=3))
    assert parsed.charts.keys() <= {"active_hourly"}
    assert parsed.empty_charts >= CHARTS - {"active_hourly"}


# --- writing and the CLI --------------------------------------------------------------------


@pytest.mark.slow
def test_report_writes_the_page_atomically(loaded: tuple[Path, list[dict]], tmp_path: Path) -> None:
    db = loaded[0]
    out = tmp_path / "report.html"
    out.write_text("the previous page")
    result = run_cli("report", "--db", str(db), "--format", "html", "--output", str(out),
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert Page(out.read_text()).charts.keys() == CHARTS | OPTIONAL_CHARTS
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.html"]  # no temp left
    assert out.stat().st_mode & 0o044  # a web server may read it

    stdout = run_cli("report", "--db", str(db), "--format", "html", cwd=tmp_path)
    assert stdout.returncode == 0 and stdout.stdout == out.read_text()


def test_a_page_path_that_cannot_be_written_is_exit_2(
    loaded: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    result = run_cli("report", "--db", str(loaded[0]), "--format", "html",
                     "--output", str(tmp_path / "missing" / "r.html"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("batchlens: the folder of the page does not exist")
    assert len(result.stderr.splitlines()) == 1


def test_a_failed_write_leaves_the_old_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("batchlens.output.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(out, "new")
    assert out.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.slow
def test_extract_rewrites_the_page_after_a_successful_run(sim: Simulator, db: Path) -> None:
    out = db.parent / "site" / "report.html"
    missing = extract(sim, db, "--html", str(out))
    assert missing.returncode == 2, missing.stderr
    assert not db.exists()  # refused before anything was created

    out.parent.mkdir()
    first = extract(sim, db, "--html", str(out))
    assert first.returncode == 0, first.stderr
    written = out.read_text()
    assert "OpenAI Batch API jobs" in written and "active_hourly" in written

    out.write_text("kept")
    refused = extract(sim, db, "--html", str(out), env=cli_env(OPENAI_API_KEY="sk-wrong-key"))
    assert refused.returncode == 4
    assert out.read_text() == "kept"  # a failed run does not touch the page

    again = extract(sim, db, "--html", str(out))
    assert again.returncode == 0, again.stderr
    assert "OpenAI Batch API jobs" in out.read_text()


@pytest.mark.slow
def test_demo_writes_demo_html(tmp_path: Path) -> None:
    result = run_cli("demo", "--db", str(tmp_path / "demo.duckdb"), "--batches", "300",
                     cwd=tmp_path, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    html = tmp_path / "demo.html"
    assert str(html) in result.stdout
    assert Page(html.read_text()).charts.keys() == CHARTS | OPTIONAL_CHARTS


# --- size -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_year_of_history_stays_under_a_megabyte(tmp_path: Path) -> None:
    """Seven simulated 60-day histories end to end: 420 days, about 5,000 batches."""
    plans = [plan for k in range(7) for plan in generate_history(700, k, NOW - k * 60 * DAY)]
    history = [batch for plan in plans if (batch := render(plan, NOW)) is not None]
    db = tmp_path / "year.duckdb"
    with Simulator(history=history, api_key=KEY, now=NOW) as sim:
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=KEY))
    for days in (30, 365):
        text = page(db, days=days)
        assert len(text.encode()) < 1_000_000, (days, len(text.encode()))
        assert Page(text).charts.keys() >= CHARTS  # and the optional ones with data


# --- in a real browser ------------------------------------------------------------------------

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="SKIPPED LOUDLY: chromium not found; the page is NOT checked in a browser. "
    "Install Debian's `chromium` package (.ci/run does).",
)


def spread(png: bytes) -> tuple[float, float]:
    """The grey levels' standard deviation, and the share of pixels that are not background."""
    image = Image.open(io.BytesIO(png)).convert("L")
    histogram = image.histogram()
    background = max(range(256), key=histogram.__getitem__)
    return ImageStat.Stat(image).stddev[0], 1 - histogram[background] / sum(histogram)


@pytest.mark.slow
@needs_chromium
def test_the_page_in_chromium(built: tuple[str, dict], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_atomically(out, built[0])
    loaded = load(file_url(out), width=1280)
    (tmp_path / "report.png").write_bytes(loaded.screenshot)
    assert loaded.errors == []
    width, height = Image.open(io.BytesIO(loaded.screenshot)).size
    assert width == 1280 and height > 3_000  # the whole page, charts and tables
    stddev, drawn = spread(loaded.screenshot)
    assert stddev > 20 and drawn > 0.05, (stddev, drawn)


@pytest.mark.slow
@needs_chromium
def test_the_browser_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><body><p>x</p><img src='missing.png'>"
        "<script>console.error('boom'); undefined_function();</script></body></html>"
    )
    errors = load(file_url(broken)).errors
    assert any("boom" in error for error in errors), errors
    assert any("undefined_function" in error for error in errors), errors
    assert any("missing.png" in error for error in errors), errors

    # our policy turns any resource reference into an error, and a blank page is found out
    blank = tmp_path / "blank.html"
    blank.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"></head><body>"
        '<img src="https://cdn.example/x.png"></body></html>'
    )
    loaded = load(file_url(blank))
    assert any("Content Security Policy" in error for error in loaded.errors), loaded.errors
    stddev, drawn = spread(loaded.screenshot)
    assert stddev < 1 and drawn < 0.01
