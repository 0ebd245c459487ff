"""`batchlens report` over a loaded database: every section's values, both formats, errors.

The batches are placed relative to the wall clock (hours and days ago) because the report
is anchored at "as of", the start of the extraction; expected window contents are worked
out from the recorded "as of" with plain date arithmetic.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from batchlens.config import Account
from batchlens.errors import UsageError
from batchlens.report.terminal import report, windows_for
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator
from batchlens.views.build import build_models

API_KEY = "sk-test-report-0001"
MINUTE, HOUR, DAY = 60, 3_600, 86_400
NOW = int(time.time())


def batch(batch_id: str, status: str, ago: int, **stages: Any) -> dict[str, Any]:
    """A Batch object created `ago` seconds before NOW; stage times are offsets from creation."""
    created = NOW - ago
    errors = stages.pop("errors", None)
    counts = stages.pop("counts", (0, 0, 0))
    obj = {
        "id": batch_id,
        "object": "batch",
        "endpoint": stages.pop("endpoint", "/v1/chat/completions"),
        "model": stages.pop("model", "gpt-4o-mini"),
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": "file-in",
        "completion_window": "24h",
        "status": status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": created,
        "expires_at": created + DAY,
        "request_counts": dict(zip(("total", "completed", "failed"), counts, strict=True)),
        "metadata": None,
    }
    for name in ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling",
                 "cancelled"):  # fmt: skip
        obj[f"{name}_at"] = created + stages[name] if name in stages else None
    return obj


def invalid_json(line: int) -> dict[str, Any]:
    return {"code": "invalid_json", "message": f"Line {line} is not valid JSON.", "param": None,
            "line": line}  # fmt: skip


HISTORY = [
    batch("batch_done_1", "completed", 3 * HOUR, counts=(100, 95, 5),
          in_progress=60, finalizing=1_800, completed=2_400),
    batch("batch_done_2", "completed", 2 * DAY, counts=(10, 10, 0),
          in_progress=100, finalizing=600, completed=700),
    batch("batch_embed", "completed", 10 * DAY, endpoint="/v1/embeddings",
          model="text-embedding-3-small", counts=(50, 50, 0),
          in_progress=20, finalizing=900, completed=1_020),
    batch("batch_rejected", "failed", 4 * DAY, failed=30, errors=[
        invalid_json(3),
        {"code": "duplicate_custom_id", "message": "The custom_id is a duplicate.",
         "param": "custom_id", "line": 8},
    ]),
    batch("batch_rejected_old", "failed", 20 * DAY, failed=30, errors=[invalid_json(9)]),
    batch("batch_expired", "expired", 25 * DAY, counts=(100, 60, 0),
          in_progress=300, expired=DAY),
    batch("batch_ancient", "completed", 60 * DAY, in_progress=10, finalizing=20, completed=30,
          errors=None),
    # open
    batch("batch_stuck_finalizing", "finalizing", 3 * DAY, in_progress=100, finalizing=DAY),
    batch("batch_overdue", "in_progress", 30 * HOUR, in_progress=60),
    batch("batch_running", "in_progress", HOUR, in_progress=60),
    batch("batch_finalizing_now", "finalizing", 2 * HOUR, in_progress=60,
          finalizing=2 * HOUR - 30 * MINUTE),
]  # fmt: skip
TERMINAL = {"completed", "failed", "expired", "cancelled"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("report") / "report.duckdb"
    with Simulator(history=HISTORY, api_key=API_KEY) as sim:
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=API_KEY))
    build_models(db)
    return db


@pytest.fixture(scope="module")
def as_of_day(loaded: Path) -> date:
    with duckdb.connect(str(loaded), read_only=True) as connection:
        (started,) = connection.execute(
            "select max(started_at) from openai_batches.extractions"
        ).fetchone()
    return started.astimezone(UTC).date()


def in_window(b: dict[str, Any], days: int, as_of_day: date) -> bool:
    day = datetime.fromtimestamp(b["created_at"], UTC).date()
    return as_of_day - timedelta(days=days) < day <= as_of_day


def test_json_report_values(loaded: Path, as_of_day: date) -> None:
    data = json.loads(report(loaded, fmt="json"))
    assert data["days"] == 30 and data["as_of_source"] == "extraction"

    active = {row["status"]: row["batches"] for row in data["active"]}
    assert active == {"validating": 0, "in_progress": 2, "finalizing": 2, "cancelling": 0}

    assert [w["days"] for w in data["windows"]] == [1, 7, 30]
    for window in data["windows"]:
        members = [
            b
            for b in HISTORY
            if b["status"] in TERMINAL and in_window(b, window["days"], as_of_day)
        ]
        failed = sum(b["status"] == "failed" for b in members)
        expired = sum(b["status"] == "expired" for b in members)
        total = sum(b["request_counts"]["total"] for b in members)
        request_failed = sum(b["request_counts"]["failed"] for b in members)
        assert window["terminal"] == len(members), window
        assert (window["failed"], window["expired"]) == (failed, expired)
        assert window["request_total"] == total
        if members:  # sums over sums, not an average of daily rates
            assert window["failure_rate"] == pytest.approx(failed / len(members))
            assert window["expired_rate"] == pytest.approx(expired / len(members))
        else:
            assert window["failure_rate"] is None
        if total:
            assert window["request_failure_rate"] == pytest.approx(request_failed / total)
        else:
            assert window["request_failure_rate"] is None
    thirty = data["windows"][-1]
    # everything terminal but batch_ancient (60 days old)
    assert thirty["terminal"] == 6
    assert thirty["failure_rate"] == pytest.approx(2 / 6)
    assert thirty["request_failure_rate"] == pytest.approx(5 / 260)

    durations = {(d["endpoint"], d["model"]): d for d in data["durations"]}
    assert set(durations) == {
        ("/v1/chat/completions", "gpt-4o-mini"),
        ("/v1/embeddings", "text-embedding-3-small"),
    }
    chat = durations[("/v1/chat/completions", "gpt-4o-mini")]
    assert chat["batches"] == 2  # 2340 s and 600 s in progress
    assert chat["duration_p50_s"] == pytest.approx(1470)
    assert chat["duration_p90_s"] == pytest.approx(600 + 0.9 * 1740)
    embed = durations[("/v1/embeddings", "text-embedding-3-small")]
    assert embed["duration_p50_s"] == embed["duration_p90_s"] == pytest.approx(1000)

    open_batches = data["open_batches"]
    assert (open_batches["total"], open_batches["overdue"]) == (4, 2)
    assert open_batches["long_finalizing"] == 1
    assert [b["batch_id"] for b in open_batches["batches"]] == [
        "batch_stuck_finalizing",  # stuck in finalizing (and overdue)
        "batch_overdue",  # overdue
        "batch_finalizing_now",  # then the oldest: created 2 hours before "as of"
        "batch_running",  # created 1 hour before
    ]
    assert [(b["endpoint"], b["model"]) for b in open_batches["batches"]] == [
        ("/v1/chat/completions", "gpt-4o-mini")
    ] * 4
    stuck = open_batches["batches"][0]
    assert stuck["is_overdue"] and stuck["is_long_finalizing"]
    # 48 h before NOW, measured at "as of": NOW is fixed when the module is collected, "as of"
    # when the fixture extracts, which in a long suite can be many minutes later
    as_of = datetime.fromisoformat(str(data["as_of"])).timestamp()
    assert stuck["hours_in_status"] == pytest.approx((as_of - (NOW - 2 * DAY)) / HOUR, abs=0.01)
    assert stuck["status_since"] == datetime.fromtimestamp(NOW - 2 * DAY, UTC).isoformat()

    codes = data["error_codes"]
    assert [(c["code"], c["entries"], c["batches"]) for c in codes] == [
        ("invalid_json", 2, 2),
        ("duplicate_custom_id", 1, 1),
    ]
    assert codes[0]["example_message"] == "Line 3 is not valid JSON."  # the most recent


def test_days_sets_the_horizon(loaded: Path) -> None:
    assert windows_for(30) == [1, 7, 30]
    assert windows_for(3) == [1, 3]
    assert windows_for(90) == [1, 7, 30, 90]
    data = json.loads(report(loaded, fmt="json", days=90))
    assert data["windows"][-1]["days"] == 90
    assert data["windows"][-1]["terminal"] == 7  # batch_ancient too
    durations = {(d["endpoint"], d["model"]): d["batches"] for d in data["durations"]}
    assert durations[("/v1/chat/completions", "gpt-4o-mini")] == 3


def test_table_report(loaded: Path) -> None:
    text = report(loaded)
    for title in ("Open now", "Terminal batches by window", "Completed batches, last 30 d",
                  "Open batches: 4, 2 overdue, 1 finalizing > 6 h",
                  "Most common error codes, last 30 d"):  # fmt: skip
        assert title in text, title
    stuck = next(line for line in text.splitlines() if "batch_stuck_finalizing" in line)
    assert "OVERDUE" in stuck and "STUCK" in stuck
    running = next(line for line in text.splitlines() if "batch_running" in line)
    assert "OVERDUE" not in running
    lines = text.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if batch_id in line)
        for batch_id in ("batch_stuck_finalizing", "batch_overdue", "batch_running")
    ]
    assert order == sorted(order)
    for header in ("failure rate", "expired rate", "request failure rate", "p50 duration"):
        assert header in text, header  # headers say what they are: at 120 columns, one line
    thirty = next(line for line in lines if line.strip().startswith("30 d"))
    assert "33.3%" in thirty  # failure rate: 2 of 6
    assert "Line 3 is not valid JSON." in text
    assert "24m 30s" in text  # p50 of 2340 s and 600 s
    assert "\x1b[" not in text  # plain text: the CLI may write it to a file or a pipe


def test_report_is_the_same_whenever_it_is_read(loaded: Path) -> None:
    first = report(loaded, fmt="json")
    time.sleep(1.1)
    assert report(loaded, fmt="json") == first


def test_report_does_not_write(loaded: Path) -> None:
    before = loaded.stat().st_mtime_ns, loaded.read_bytes()
    report(loaded)
    assert (loaded.stat().st_mtime_ns, loaded.read_bytes()) == before


def test_missing_database(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        report(tmp_path / "nowhere.duckdb")
    assert not (tmp_path / "nowhere.duckdb").exists()


def test_database_without_views(tmp_path: Path) -> None:
    db = tmp_path / "raw.duckdb"
    with Simulator(history=HISTORY[:2], api_key=API_KEY) as sim:
        account = Account(name="default", base_url=sim.url, api_key=API_KEY)
        run_extraction(db, account, build_views=False)
    with pytest.raises(UsageError, match="batchlens models"):
        report(db)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "notes.duckdb"
    db.write_text("not a database")
    with pytest.raises(UsageError, match="cannot open"):
        report(db)


def test_bad_arguments(loaded: Path) -> None:
    with pytest.raises(UsageError, match="--format"):
        report(loaded, fmt="csv")
    with pytest.raises(UsageError, match="--days"):
        report(loaded, days=0)


def test_report_on_an_account_without_batches(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    with Simulator(history=[], api_key=API_KEY) as sim:
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=API_KEY))
    build_models(db)
    data = json.loads(report(db, fmt="json"))
    assert [row["batches"] for row in data["active"]] == [0, 0, 0, 0]
    assert all(w["terminal"] == 0 and w["failure_rate"] is None for w in data["windows"])
    assert data["open_batches"]["total"] == 0
    assert "(none)" in report(db)


def test_docs_name_every_json_key(loaded: Path) -> None:
    """docs/report.md lists the JSON document's keys: the ones the report has, no others."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "report.md").read_text()
    paragraph = " ".join(doc.split("The top-level keys", 1)[1].split("\n\n", 1)[0].split())
    # `name` (`a`, `b`, ...): a key and the keys inside it, one level of parentheses deep
    inner = dict(re.findall(r"`(\w+)`\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)", paragraph))
    top = set(re.findall(r"`(\w+)`", re.sub(r"\([^()]*(?:\([^()]*\)[^()]*)*\)", "", paragraph)))
    from batchlens.report.terminal import collect

    data = collect(loaded, 30, by="metadata.owner")
    assert top == set(data), top ^ set(data)
    summary, each = inner["open_batches"].split("each batch", 1)
    assert set(re.findall(r"`(\w+)`", summary)) == set(data["open_batches"])
    assert set(re.findall(r"`(\w+)`", each)) <= set(data["open_batches"]["batches"].columns)
    assert set(re.findall(r"`(\w+)`", inner["request_errors"])) == set(data["request_errors"])
    spend = dict(re.findall(r"`(\w+)`:\s*([^;]*)", inner["spend"]))
    for part in ("windows", "unpriced_models"):
        assert set(re.findall(r"`(\w+)`", spend[part])) == set(data["spend"][part].columns)
