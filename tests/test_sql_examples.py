"""The SQL of the README and the docs pages, and the example queries (docs/examples/*.sql),
run and answer sensibly.

Against a database with the default file name, `batchlens.duckdb`, opened as any DuckDB
client opens it, so a name that only works inside batchlens fails here.

The simulated history ends just before the real clock, so "as of" (the extraction's start)
falls right after it and every example's window over the last days has rows in it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import shlex
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from batchlens.config import Account
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import Simulator

API_KEY = "sk-test-sql-examples-0001"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
README = ROOT / "README.md"
# Where the SQL and the command lines are read from: the README and every docs page, so an
# example that moves from one to another stays executed.
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
DUCKDB_CLI = Path(sys.executable).parent / "duckdb"  # from the duckdb-cli package
MINUTE, HOUR = 60, 3_600
ACTIVE = {"validating", "in_progress", "finalizing"}
TERMINAL = {"completed", "failed", "expired", "cancelled"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    db = tmp_path_factory.mktemp("examples") / "batchlens.duckdb"
    start = int(time.time()) - HOUR
    with Simulator(batches=800, seed=3, now=start, api_key=API_KEY) as sim:
        sim.add_batches(3, scenario="failed_validation")  # errors in the last day, for sure
        sim.advance(50 * MINUTE)  # validation takes at most 40 minutes
        run_extraction(db, Account(name="default", base_url=sim.url, api_key=API_KEY))
        return db, sim.visible()


def run_example(db: Path, name: str) -> list[dict[str, Any]]:
    sql = (EXAMPLES / f"{name}.sql").read_text()
    with duckdb.connect(str(db), read_only=True) as connection:
        connection.execute("set TimeZone = 'UTC'")
        cursor = connection.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def as_of(db: Path) -> datetime:
    with duckdb.connect(str(db), read_only=True) as connection:
        (value,) = connection.execute("select as_of from openai_batches.as_of").fetchone()
    return value.astimezone(UTC)


def test_every_example_is_tested() -> None:
    assert {path.stem for path in EXAMPLES.glob("*.sql")} == {
        "failure_rate_by_week",
        "slowest_models",
        "stuck_batches",
        "errors_last_day",
        "active_last_48_hours",
    }


def test_failure_rate_by_week(loaded: tuple[Path, list[dict]]) -> None:
    db, visible = loaded
    rows = run_example(db, "failure_rate_by_week")
    terminal = [b for b in visible if b["status"] in TERMINAL]
    by_group: dict[tuple, Counter] = {}
    for b in terminal:  # the oracle: plain Python over the simulator's batches
        day = datetime.fromtimestamp(b["created_at"], UTC).date()
        week = day - timedelta(days=day.weekday())
        counts = by_group.setdefault((week, b["endpoint"]), Counter())
        counts["terminal"] += 1
        counts[b["status"]] += 1
        counts["requests"] += (b.get("request_counts") or {}).get("total") or 0
        counts["requests_failed"] += (b.get("request_counts") or {}).get("failed") or 0
    assert {(r["week"], r["endpoint"]) for r in rows} == set(by_group)
    for row in rows:
        counts = by_group[(row["week"], row["endpoint"])]
        assert (row["terminal"], row["failed"], row["expired"]) == (
            counts["terminal"], counts["failed"], counts["expired"],
        )  # fmt: skip
        assert row["failure_rate"] == pytest.approx(counts["failed"] / counts["terminal"])
        expected = counts["requests_failed"] / counts["requests"] if counts["requests"] else None
        assert row["request_failure_rate"] == pytest.approx(expected)
    weeks = [r["week"] for r in rows]
    assert weeks == sorted(weeks, reverse=True)
    assert all(week.weekday() == 0 for week in weeks)  # Mondays


def test_slowest_models(loaded: tuple[Path, list[dict]]) -> None:
    db, visible = loaded
    rows = run_example(db, "slowest_models")
    assert 3 <= len(rows) <= 10
    p90 = [r["duration_p90_s"] for r in rows]
    assert p90 == sorted(p90, reverse=True)
    for row in rows:
        assert 0 < row["duration_p50_s"] <= row["duration_p90_s"] <= row["duration_max_s"]
    cutoff = (as_of(db) - timedelta(days=30)).timestamp()
    recent = Counter(
        (b["endpoint"], b.get("model"))
        for b in visible
        if b["status"] == "completed" and b["created_at"] > cutoff
    )
    for row in rows:
        assert row["batches"] == recent[(row["endpoint"], row["model"])]


def test_stuck_batches(loaded: tuple[Path, list[dict]]) -> None:
    db, visible = loaded
    rows = run_example(db, "stuck_batches")
    by_id = {r["batch_id"]: r for r in rows}
    # the simulator scripts one batch finalizing for 2.5 days
    finalizing = [by_id[b["id"]] for b in visible if b["status"] == "finalizing"]
    assert max(r["hours_in_status"] for r in finalizing) > 24
    hours = [r["hours_in_status"] for r in rows]
    assert hours == sorted(hours, reverse=True)
    # stuck: overdue, or finalizing for more than 6 hours (the glossary's definition)
    now = as_of(db).timestamp()
    expected = {
        b["id"]
        for b in visible
        if b["status"] not in TERMINAL
        and (
            b["expires_at"] < now
            or (b["status"] == "finalizing" and b["finalizing_at"] < now - 6 * HOUR)
        )
    }
    assert set(by_id) == expected
    assert any(b["status"] == "in_progress" and b["id"] not in expected for b in visible)


def test_errors_last_day(loaded: tuple[Path, list[dict]]) -> None:
    db, visible = loaded
    rows = run_example(db, "errors_last_day")
    cutoff = (as_of(db) - timedelta(hours=24)).timestamp()
    expected = Counter(
        (b["id"], e["code"])
        for b in visible
        if b["created_at"] > cutoff
        for e in (b.get("errors") or {}).get("data") or []
    )
    assert len(expected) >= 3
    assert Counter((r["batch_id"], r["code"]) for r in rows) == expected
    assert all(r["status"] == "failed" and r["message"] for r in rows)


def test_active_last_48_hours(loaded: tuple[Path, list[dict]]) -> None:
    db, visible = loaded
    rows = run_example(db, "active_last_48_hours")
    assert len(rows) == 48
    hours = [r["hour"] for r in rows]
    assert all((b - a) == timedelta(hours=1) for a, b in itertools.pairwise(hours))
    assert hours[-1] == as_of(db).replace(minute=0, second=0, microsecond=0)
    assert any(r["active"] > 0 for r in rows)
    # at the last hour mark: created by then, and not yet ended then
    last = hours[-1].timestamp()
    ends = ("completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at")
    expected = 0
    for b in visible:
        ended = min((b[k] for k in ends if b[k] is not None), default=None)
        if b["status"] in ACTIVE:
            ended = None
        expected += b["created_at"] <= last and (ended is None or ended > last)
    assert rows[-1]["active"] == expected


def readme_sql_blocks(documents: list[Path] = DOCUMENTS) -> list[str]:
    return [
        sql
        for document in documents
        for sql in re.findall(r"```sql\n(.*?)```", document.read_text(), flags=re.DOTALL)
    ]


def readme_command_lines(documents: list[Path] = DOCUMENTS) -> list[list[str]]:
    """`batchlens sql ...` and `duckdb ...` lines of the documents' shell blocks, as argv."""
    commands = []
    blocks = [
        block
        for document in documents
        for block in re.findall(r"```sh\n(.*?)```", document.read_text(), flags=re.DOTALL)
    ]
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            if "duckdb " not in line and "batchlens sql " not in line:
                continue
            words = shlex.split(line, comments=True)
            if ">" in words:  # where the output goes is the reader's business
                words = words[: words.index(">")]
            shell = bool(words) and words[0].rsplit("/", 1)[-1] == "duckdb"
            if shell or (words[0].endswith("batchlens") and words[1:2] == ["sql"]):
                commands.append(words)
    return commands


def test_the_readme_has_sql_to_check() -> None:
    assert len(readme_sql_blocks()) >= 6
    kinds = Counter(words[0].rsplit("/", 1)[-1] for words in readme_command_lines())
    assert kinds["duckdb"] >= 3 and kinds["batchlens"] >= 2
    # the README keeps one of each itself: a newcomer's first query is executed too
    assert readme_sql_blocks([README])
    assert {words[0].rsplit("/", 1)[-1] for words in readme_command_lines([README])} == {
        "batchlens",
        "duckdb",
    }


@pytest.mark.parametrize("sql", readme_sql_blocks(), ids=lambda sql: sql.split()[1][:30])
def test_every_readme_sql_block_runs_verbatim(loaded: tuple[Path, list[dict]], sql: str) -> None:
    db, _ = loaded
    with duckdb.connect(str(db), read_only=True) as connection:
        assert connection.execute(sql).description


def test_every_readme_command_line_runs(loaded: tuple[Path, list[dict]]) -> None:
    """Verbatim but for the database path, which is this test's file of the same name."""
    db, _ = loaded
    for words in readme_command_lines():
        stdin = None
        if words[0].endswith("duckdb"):
            options = [word for word in words[1:] if word.startswith("-")]  # -readonly
            path, *rest = [word for word in words[1:] if not word.startswith("-")]
            # the default file name, or the demo's (the README's lines after `make demo`)
            assert Path(path).name in (db.name, "demo.duckdb"), words
            argv = [str(DUCKDB_CLI), *options, str(db), *rest]
            if "<" in argv:
                stdin = (ROOT / argv[argv.index("<") + 1]).read_text()
                argv = argv[: argv.index("<")]
        else:
            argv = [sys.executable, "-m", "batchlens", *words[1:], "--db", str(db)]
        result = subprocess.run(
            argv, input=stdin, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0 and not result.stderr, (words, result.stderr)
        assert len(result.stdout.splitlines()) >= 3, (words, result.stdout)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.sql")), ids=lambda path: path.stem)
def test_every_example_runs_in_the_duckdb_cli(loaded: tuple[Path, list[dict]], path: Path) -> None:
    db, _ = loaded
    result = subprocess.run(
        [str(DUCKDB_CLI), "-csv", "-readonly", str(db)],
        input=path.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    header = result.stdout.splitlines()[0].split(",")
    assert header == [column[0] for column in duckdb_description(db, path.read_text())]


def duckdb_description(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.execute(sql).description


def batchlens_sql(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "batchlens", "sql", *args, "--db", str(db)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_batchlens_sql_formats_agree_with_the_database(loaded: tuple[Path, list[dict]]) -> None:
    db, visible = loaded
    query = "select batch_id, status, is_overdue from open_batches order by batch_id"
    open_ids = sorted(b["id"] for b in visible if b["status"] not in TERMINAL)
    as_json = json.loads(batchlens_sql(db, query, "--format", "json").stdout)
    assert [row["batch_id"] for row in as_json] == open_ids
    as_csv = list(csv.DictReader(io.StringIO(batchlens_sql(db, query, "--format", "csv").stdout)))
    assert [row["batch_id"] for row in as_csv] == open_ids
    assert {row["is_overdue"] for row in as_csv} <= {"True", "False"}
    table = batchlens_sql(db, query).stdout
    assert all(batch_id in table for batch_id in open_ids)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("selec 1", "syntax error"),
        ("select nope from openai_batches.open_batches", "nope"),
        ("delete from openai_batches.batches", "read-only"),
    ],
)
def test_batchlens_sql_refuses_bad_sql_with_exit_2(
    loaded: tuple[Path, list[dict]], query: str, said: str
) -> None:
    db, visible = loaded
    result = batchlens_sql(db, query)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("batchlens: the query failed:") and said in line
    with duckdb.connect(str(db), read_only=True) as connection:
        (count,) = connection.execute("select count(*) from openai_batches.batches").fetchone()
    assert count == len(visible)
