"""Error and output files, request by request: fetched once, streamed, never holding content.

Every test runs the CLI over HTTP against the simulator into a real DuckDB file. Expected
rows come from the simulator's own files, parsed here with plain Python (`expected_*`),
never from the loader's code.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import requests

from batchlens.run.extract import state_dir
from batchlens.simulator.files import CONTENT_MARKER
from batchlens.simulator.server import Simulator
from helpers import KEY, cli_command, cli_env, extract, run_cli, summary

DAY = 86_400
TERMINAL = {"completed", "failed", "expired", "cancelled"}
ROOT = Path(__file__).resolve().parents[1]
RETENTION = 30 * DAY


@pytest.fixture
def small_sim() -> Iterator[Simulator]:
    with Simulator(batches=150, seed=21, api_key=KEY) as simulator:
        yield simulator


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


# --- the oracle: the simulator's files, read with plain Python ------------------------------


def ended_at(batch: dict) -> int:
    return next(
        batch[k] for k in ("completed_at", "failed_at", "expired_at", "cancelled_at") if batch[k]
    )


def terminal_files(sim: Simulator, kinds: tuple[str, ...] = ("error",)) -> dict[str, dict]:
    """file id -> batch, for every terminal batch's file of `kinds`."""
    found = {}
    for batch in sim.visible():
        if batch["status"] in TERMINAL:
            for kind in kinds:
                if batch[f"{kind}_file_id"]:
                    found[batch[f"{kind}_file_id"]] = batch
    return found


def served(sim: Simulator, batch: dict) -> bool:
    """OpenAI keeps batch files 30 days after the batch ends."""
    return sim.clock < ended_at(batch) + RETENTION


def code_of(line: dict) -> str | None:
    response = line.get("response") or {}
    body_error = (response.get("body") or {}).get("error") or {}
    line_error = line.get("error") or {}
    code = body_error.get("code") or line_error.get("code")
    if code is None and response.get("status_code") is not None:
        code = f"http_{response['status_code']}"
    return code


def expected_errors(sim: Simulator) -> dict[tuple[str, str], str | None]:
    """(batch id, custom_id) -> error code of every failed request in a file still served."""
    expected = {}
    for file_id, batch in terminal_files(sim).items():
        if served(sim, batch):
            for line in sim.file_lines(file_id):
                expected[(batch["id"], line["custom_id"])] = code_of(line)
    return expected


# --- tests ----------------------------------------------------------------------------------


def test_views_agree_with_an_independent_count(small_sim: Simulator, db: Path) -> None:
    result = extract(small_sim, db)
    assert result.returncode == 0, result.stderr
    expected = expected_errors(small_sim)
    assert len(expected) > 100, "the history should have failed requests to check"
    stored = query(db, "select batch_id, custom_id, error_code from openai_batches.request_errors")
    assert {(b, c): code for b, c, code in stored} == expected
    assert len(stored) == len(expected)

    # per batch: how many, and the most frequent code (ties: the smaller code)
    per_batch: dict[str, Counter] = defaultdict(Counter)
    for (batch_id, _), code in expected.items():
        per_batch[batch_id][code] += 1
    facts = {
        batch_id: (rows, top)
        for batch_id, rows, top in query(
            db,
            "select batch_id, request_error_rows, top_request_error_code "
            "from openai_batches.batch_facts",
        )
    }
    for batch_id, codes in per_batch.items():
        top = sorted(codes.items(), key=lambda item: (-item[1], item[0]))[0][0]
        assert facts[batch_id] == (sum(codes.values()), top), batch_id
    assert sum(rows for rows, _ in facts.values()) == len(expected)

    # is_all_failed: terminal, total > 0, failed == total
    all_failed = {
        b["id"]
        for b in small_sim.visible()
        if b["status"] in TERMINAL
        and b["request_counts"]["total"] > 0
        and b["request_counts"]["failed"] == b["request_counts"]["total"]
    }
    stored_all_failed = {
        row[0]
        for row in query(db, "select batch_id from openai_batches.batch_facts where is_all_failed")
    }
    assert stored_all_failed == all_failed

    # daily codes: requests per (UTC creation day, endpoint, model, code) and batch counts
    batches = {b["id"]: b for b in small_sim.visible()}
    daily: Counter = Counter()
    daily_batches: dict[tuple, set] = defaultdict(set)
    for (batch_id, _), code in expected.items():
        batch = batches[batch_id]
        day = datetime.fromtimestamp(batch["created_at"], UTC).date()
        key = (day, batch["endpoint"], batch.get("model"), code)
        daily[key] += 1
        daily_batches[key].add(batch_id)
    stored_daily = query(
        db,
        "select day, endpoint, model, error_code, requests, batches "
        "from openai_batches.request_error_codes_daily",
    )
    assert {row[:4]: row[4] for row in stored_daily} == dict(daily)
    assert {row[:4]: row[5] for row in stored_daily} == {
        k: len(v) for k, v in daily_batches.items()
    }

    # the ledger: each terminal error file once, loaded while served, expired after
    ledger = {
        file_id: (state, lines)
        for file_id, state, lines in query(
            db, "select file_id, state, lines from openai_batches.batch_files"
        )
    }
    files = terminal_files(small_sim)
    assert ledger.keys() == files.keys()
    for file_id, batch in files.items():
        if served(small_sim, batch):
            assert ledger[file_id] == ("loaded", len(small_sim.file_lines(file_id)))
        else:
            assert ledger[file_id] == ("expired", 0)
    assert summary(result)["files"] == sum(1 for s, _ in ledger.values() if s == "loaded")
    assert summary(result)["request_rows"] == len(expected)


@pytest.mark.slow
def test_each_file_is_downloaded_once_over_many_runs(small_sim: Simulator, db: Path) -> None:
    runs = [()] * 4 + [("--full",), ()]
    for number, more in enumerate(runs):
        result = extract(small_sim, db, *more)
        assert result.returncode == 0, result.stderr
        # batches finish, new ones arrive and finish, old files pass their 30 days
        small_sim.advance(5 * DAY if number % 2 else 7 * 3600)
        small_sim.add_batches(15, same_second=False)
    downloads = Counter(
        path.split("/")[3] for _, path, _, _ in small_sim.requests if path.endswith("/content")
    )
    assert downloads and set(downloads.values()) == {1}
    ledger = query(db, "select file_id, count(*) from openai_batches.batch_files group by file_id")
    assert {file_id for file_id, _ in ledger} == set(downloads)
    assert all(count == 1 for _, count in ledger)
    # the list/retrieve bound does not count downloads
    last = summary(result)
    assert last["requests"] <= last["pages"] + 50
    assert query(
        db,
        "select count(*) - count(distinct (batch_id, custom_id)) "
        "from openai_batches.batch_requests",
    ) == [(0,)]


def test_an_expired_file_is_recorded_and_never_asked_again(small_sim: Simulator, db: Path) -> None:
    assert extract(small_sim, db, "--requests", "none").returncode == 0
    assert small_sim.content_requests() == 0
    assert query(db, "select count(*) from openai_batches.batch_files") == [(0,)]
    small_sim.advance(31 * DAY)  # every file of the first run is gone now
    result = extract(small_sim, db)  # the stored terminal batches' files are due now
    assert result.returncode == 0, result.stderr
    states = dict(query(db, "select file_id, state from openai_batches.batch_files"))
    files = terminal_files(small_sim)
    assert states.keys() == files.keys()
    assert {file_id for file_id, state in states.items() if state == "expired"} == {
        file_id for file_id, batch in files.items() if not served(small_sim, batch)
    }
    expired = [f for f, s in states.items() if s == "expired"]
    assert expired
    small_sim.reset_requests()
    assert extract(small_sim, db).returncode == 0
    assert small_sim.content_requests() == 0  # nothing new ended, nothing asked again


def test_requests_all_loads_output_usage_that_adds_up(db: Path) -> None:
    with Simulator(batches=40, seed=7, api_key=KEY) as sim:  # 4,000 output lines
        check_output_usage(sim, db)


def check_output_usage(small_sim: Simulator, db: Path) -> None:
    result = extract(small_sim, db, "--requests", "all")
    assert result.returncode == 0, result.stderr
    usage = {
        row[0]: row[1:]
        for row in query(
            db,
            # embeddings name no cached/output/reasoning tokens: absent, NULL, counted as 0
            "select batch_id, sum(input_tokens), coalesce(sum(cached_tokens), 0), "
            "coalesce(sum(output_tokens), 0), coalesce(sum(reasoning_tokens), 0), "
            "sum(total_tokens), count(*) "
            "from openai_batches.stg_batch_requests where kind = 'output' group by batch_id",
        )
    }
    checked = 0
    for batch in terminal_files(small_sim, ("output",)).values():
        if not served(small_sim, batch):
            continue
        assert usage[batch["id"]][-1] == batch["request_counts"]["completed"]
        if batch["status"] == "completed" and batch.get("usage"):
            u = batch["usage"]
            assert usage[batch["id"]][:-1] == (
                u["input_tokens"],
                u["input_tokens_details"]["cached_tokens"],
                u["output_tokens"],
                u["output_tokens_details"]["reasoning_tokens"],
                u["total_tokens"],
            )
            checked += 1
    assert checked > 3
    # the responses' content is never stored
    assert CONTENT_MARKER.encode() not in db.read_bytes()


def test_requests_none_creates_empty_tables_and_the_views(small_sim: Simulator, db: Path) -> None:
    result = extract(small_sim, db, "--requests", "none")
    assert result.returncode == 0, result.stderr
    assert summary(result)["files"] == 0 and summary(result)["request_rows"] == 0
    assert small_sim.content_requests() == 0
    for view in ("request_errors", "request_error_codes_daily", "stg_batch_files"):
        assert query(db, f"select count(*) from openai_batches.{view}") == [(0,)]
    assert query(db, "select sum(request_error_rows) from openai_batches.batch_facts") == [(0,)]


def test_requests_from_dlt_config(small_sim: Simulator, db: Path) -> None:
    env = cli_env(SOURCES__OPENAI_BATCHES__REQUESTS="none")
    assert extract(small_sim, db, env=env).returncode == 0
    assert small_sim.content_requests() == 0
    bad = extract(small_sim, db, env=cli_env(SOURCES__OPENAI_BATCHES__REQUESTS="some"))
    assert bad.returncode == 2 and "requests must be one of" in bad.stderr


def test_through_the_gateway_files_are_off_unless_asked_for(
    small_sim: Simulator, db: Path, tmp_path: Path
) -> None:
    """The pinned Portkey gateway answers 500 to file contents: a gateway account (a
    provider or an x-portkey-* header) loads no files by default, and does when asked."""
    for flags in (("--provider", "openai"), ("--header", "x-portkey-config: pc-abc")):
        result = extract(small_sim, tmp_path / f"{flags[0][2:]}.duckdb", *flags)
        assert result.returncode == 0, result.stderr
        assert summary(result)["files"] == 0
    assert small_sim.content_requests() == 0
    result = extract(small_sim, db, "--provider", "openai", "--requests", "errors")
    assert result.returncode == 0, result.stderr
    assert summary(result)["files"] == len(
        [b for b in terminal_files(small_sim).values() if served(small_sim, b)]
    )
    assert small_sim.content_requests() > 0


def test_bad_lines_are_skipped_counted_and_warned_once(small_sim: Simulator, db: Path) -> None:
    file_id, batch = next(iter(terminal_files(small_sim).items()))
    ok = [
        {"id": "batch_req_1", "custom_id": 'a "quoted" <script>', "response": {"status_code": 400,
         "body": {"error": {"code": "invalid_value", "type": "t", "message": "m", "param": None}}},
         "error": None},
        {"id": "batch_req_2", "custom_id": "b-ünï", "response": None,
         "error": {"code": "batch_expired", "message": "late"}},
        {"id": "batch_req_3", "custom_id": "c", "response": {"status_code": 500, "body": {}},
         "error": None},
    ]  # fmt: skip
    body = (
        json.dumps(ok[0]).encode() + b"\r\n\r\n"  # CRLF and a blank line
        + b"this is not json\n"
        + json.dumps({"id": "batch_req_x", "response": None}).encode() + b"\n"  # no custom_id
        + b"[1, 2]\r\n"
        + json.dumps(ok[1], ensure_ascii=False).encode() + b"\n\n"
        + json.dumps(ok[2]).encode()  # no newline at the end
    )  # fmt: skip
    small_sim.replace_file(file_id, body)
    result = extract(small_sim, db)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if file_id in line]
    assert len(warnings) == 1 and "3 line(s) skipped" in warnings[0], result.stderr
    assert query(
        db,
        "select state, lines, bad_lines, bytes from openai_batches.batch_files "
        f"where file_id = '{file_id}'",
    ) == [("loaded", 3, 3, len(body))]
    rows = query(
        db,
        "select custom_id, status_code, error_code from openai_batches.request_errors "
        f"where batch_id = '{batch['id']}' order by custom_id",
    )
    assert rows == [('a "quoted" <script>', 400, "invalid_value"), ("b-ünï", None, "batch_expired"),
                    ("c", 500, "http_500")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["500", "429", "drop"])
def test_faults_on_downloads_are_retried(small_sim: Simulator, db: Path, kind: str) -> None:
    small_sim.inject(kind, every=2, on="file", retry_after="0")
    result = extract(small_sim, db)
    assert result.returncode == 0, result.stderr
    assert small_sim.faults_injected >= 5
    assert summary(result)["retries"] == small_sim.faults_injected
    assert summary(result)["requests"] == small_sim.list_requests  # downloads are apart
    stored = query(db, "select batch_id, custom_id, error_code from openai_batches.request_errors")
    assert {(b, c): code for b, c, code in stored} == expected_errors(small_sim)


def expected_rows(sim: Simulator, kinds: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """(batch id, file kind, custom_id) of every line of every file still served."""
    return {
        (batch["id"], kind, line["custom_id"])
        for kind in kinds
        for file_id, batch in terminal_files(sim, (kind,)).items()
        if served(sim, batch)
        for line in sim.file_lines(file_id)
    }


def stored_rows(db: Path) -> list[tuple[str, str, str]]:
    return query(db, "select batch_id, kind, custom_id from openai_batches.batch_requests")


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range"])
def test_a_body_that_breaks_off_is_resumed_and_its_rows_loaded_once(db: Path, ranges: bool) -> None:
    """Cut and reset halfway through: asked again from the byte it stopped at (206), or,
    from a server that ignores `Range`, again whole with the bytes already read skipped."""
    with Simulator(batches=40, seed=7, api_key=KEY, ranges=ranges) as sim:
        every = {**terminal_files(sim, ("error",)), **terminal_files(sim, ("output",))}
        first, second, third = sorted(f for f, batch in every.items() if served(sim, batch))[:3]
        sim.inject("cut", on="content", match=first, times=2)
        sim.inject("reset", on="content", match=second, times=1)
        sim.inject("cut", on="content", match=third, times=1)
        result = extract(sim, db, "--requests", "all")
        assert result.returncode == 0, result.stderr
        rows = stored_rows(db)
        assert len(rows) == len(set(rows)) and set(rows) == expected_rows(sim, ("error", "output"))
        loaded = dict(
            query(
                db, "select file_id, bytes from openai_batches.batch_files where state = 'loaded'"
            )
        )
        assert loaded and all(size == len(b"".join(sim._file(f"/v1/files/{file_id}/content")))
                              for file_id, size in loaded.items())  # fmt: skip
        # each break costs one attempt more, a retry of the summary's
        assert sim.faults_injected == 4 and summary(result)["retries"] == 4
        for file_id, breaks in ((first, 2), (second, 1), (third, 1)):
            sent = sim.content_ranges(file_id)
            assert len(sent) == 1 + breaks and sent[0] is None
            offsets = [int(value[len("bytes=") : -1]) for value in sent[1:]]
            # from where it broke off (the server without ranges sends all, the rest skipped)
            assert offsets == sorted(offsets) and 0 < offsets[0] < loaded[file_id]


def pending_longer_than(db: Path, seconds: int) -> list[tuple]:
    """sql/queries/check/pending_files.sql, as the `check` rule runs it."""
    sql = (ROOT / "sql" / "queries" / "check" / "pending_files.sql").read_text()
    sql = sql.replace("$pending_s", str(seconds))
    return [row[1:4] for row in query(db, sql)]


def test_a_file_that_keeps_failing_costs_that_file_only(small_sim: Simulator, db: Path) -> None:
    assert extract(small_sim, db, "--requests", "none").returncode == 0
    errors = {f: b for f, b in terminal_files(small_sim).items() if served(small_sim, b)}
    broken, batch = sorted(errors.items())[0]
    small_sim.inject("cut", on="content", match=broken)  # every attempt breaks off
    small_sim.reset_requests()
    result = extract(small_sim, db)
    assert result.returncode == 6, result.stderr
    assert summary(result)["files_failed"] == 1
    assert summary(result)["files"] == len(errors) - 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("batchlens: loaded, but 1 file could not be downloaded (file ")
    assert broken in last and "broke off" in last and "the next run fetches them" in last
    assert "Traceback" not in result.stderr
    assert small_sim.content_requests(broken) == 5  # dlt's default request_max_attempts
    (state, reason, first_failed_at), = query(
        db,
        "select state, failure_reason, first_failed_at from openai_batches.batch_files "
        f"where file_id = '{broken}'",
    )  # fmt: skip
    assert state == "pending" and "broke off" in reason and first_failed_at is not None
    # every other file is in, with its rows; none of the failing file's
    ledger = dict(query(db, "select file_id, state from openai_batches.batch_files"))
    assert {f for f, s in ledger.items() if s == "loaded"} == set(errors) - {broken}
    stored = query(db, "select batch_id, custom_id, error_code from openai_batches.request_errors")
    assert {(b, c): code for b, c, code in stored} == {
        key: code for key, code in expected_errors(small_sim).items() if key[0] != batch["id"]
    }

    # what `check` warns about: pending for longer than it is asked (a day by default)
    assert pending_longer_than(db, 86_400) == []
    assert pending_longer_than(db, -3_600) == [(broken, batch["id"], "error")]

    # still failing: asked again, the first failure kept
    time.sleep(0.01)
    small_sim.reset_requests()
    again = extract(small_sim, db)
    assert again.returncode == 6, again.stderr
    assert small_sim.content_requests() == 5, small_sim.requests
    assert query(
        db, f"select first_failed_at from openai_batches.batch_files where file_id = '{broken}'"
    ) == [(first_failed_at,)]

    small_sim.clear_faults()
    small_sim.reset_requests()
    result = extract(small_sim, db)
    assert result.returncode == 0, result.stderr
    # that file only: every complete file stays as it was
    assert small_sim.content_requests() == small_sim.content_requests(broken) == 1
    assert query(
        db,
        "select state, failure_reason, first_failed_at from openai_batches.batch_files "
        f"where file_id = '{broken}'",
    ) == [("loaded", None, None)]
    stored = query(db, "select batch_id, custom_id, error_code from openai_batches.request_errors")
    assert {(b, c): code for b, c, code in stored} == expected_errors(small_sim)
    assert len(stored) == len({(b, c) for b, c, _ in stored})


@pytest.mark.slow
def test_sigkill_during_a_download_then_a_good_run(small_sim: Simulator, db: Path) -> None:
    small_sim.inject("timeout", times=1, on="file", delay=2.0)  # one download hangs a while
    process = subprocess.Popen(
        cli_command("extract", "--db", str(db), "--base-url", small_sim.url),
        cwd=db.parent, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while small_sim.faults_injected < 1 and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.kill()
    process.communicate()
    small_sim.clear_faults()
    result = extract(small_sim, db)
    assert result.returncode == 0, result.stderr
    stored = query(db, "select batch_id, custom_id, error_code from openai_batches.request_errors")
    assert {(b, c): code for b, c, code in stored} == expected_errors(small_sim)
    assert len(stored) == len(set((b, c) for b, c, _ in stored))
    files = query(db, "select file_id, count(*) from openai_batches.batch_files group by 1")
    assert {f for f, _ in files} == set(terminal_files(small_sim)) and {n for _, n in files} == {1}


def test_neither_the_key_nor_content_is_written_anywhere(tmp_path: Path) -> None:
    with Simulator(batches=40, seed=7, api_key=KEY) as sim:
        check_nothing_secret_written(sim, tmp_path)


def check_nothing_secret_written(small_sim: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "secret.duckdb"
    assert extract(small_sim, db, "--requests", "all").returncode == 0
    small_sim.inject("500", every=3, on="file")
    small_sim.advance(DAY)
    small_sim.add_batches(10, same_second=False, scenario="partial_failures")
    small_sim.advance(2 * DAY)
    assert extract(small_sim, db, "--requests", "all").returncode == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert db in written and any(state_dir(db) in p.parents for p in written)
    for path in written:
        content = path.read_bytes()
        assert KEY.encode() not in content, path
        assert CONTENT_MARKER.encode() not in content, path


def test_failed_requests_command(small_sim: Simulator, db: Path) -> None:
    assert extract(small_sim, db).returncode == 0
    expected = expected_errors(small_sim)
    by_batch: dict[str, dict[str, str | None]] = defaultdict(dict)
    for (batch_id, custom_id), code in expected.items():
        by_batch[batch_id][custom_id] = code
    batch_id = max(by_batch, key=lambda b: sum("<" in c or '"' in c for c in by_batch[b]))
    result = run_cli("failed-requests", batch_id, "--db", str(db), cwd=db.parent)
    assert result.returncode == 0, result.stderr
    listed = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["custom_id"]: row["error_code"] for row in listed} == by_batch[batch_id]
    assert [row["custom_id"] for row in listed] == sorted(by_batch[batch_id])
    result = run_cli(
        "failed-requests", batch_id, "--db", str(db), "--format", "jsonl", cwd=db.parent
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["custom_id"]: row["error_code"] for row in rows} == by_batch[batch_id]

    batches = small_sim.visible()
    gone = next(
        b["id"] for b in batches if b["error_file_id"] and b["status"] in TERMINAL
        and not served(small_sim, b)
    )  # fmt: skip
    running = next(b["id"] for b in batches if b["status"] not in TERMINAL)
    for unknown, words in (("batch_nope", "not in the database"), (gone, "expired"),
                           (running, "still")):  # fmt: skip
        result = run_cli("failed-requests", unknown, "--db", str(db), cwd=db.parent)
        assert result.returncode == 4, result.stderr
        assert words in result.stderr and result.stderr.count("\n") == 1
        assert result.stdout == ""


def test_the_report_says_why_requests_failed(tmp_path: Path) -> None:
    db = tmp_path / "report.duckdb"
    now = int(time.time()) - 6 * 3600  # a history that ends now, as the demo's
    with Simulator(batches=150, seed=21, api_key=KEY, now=now) as sim:
        assert extract(sim, db).returncode == 0
        expected = expected_errors(sim)
        batches = {b["id"]: b for b in sim.visible()}
    result = run_cli("report", "--db", str(db), "--format", "json", "--days", "7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    section = json.loads(result.stdout)["request_errors"]
    (as_of,) = query(db, "select cast(as_of at time zone 'UTC' as date) from openai_batches.as_of")[
        0
    ]
    in_window = Counter(
        code
        for (batch_id, _), code in expected.items()
        if (as_of - datetime.fromtimestamp(batches[batch_id]["created_at"], UTC).date()).days < 7
    )
    top = sorted(in_window.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(row["error_code"], row["requests"]) for row in section["codes"]] == top
    table = run_cli("report", "--db", str(db), "--days", "7", cwd=tmp_path)
    assert (
        "Why requests failed" in table.stdout
        and "Batches where every request failed" in table.stdout
    )


# --- the simulator's files themselves -------------------------------------------------------


def test_the_simulated_files_agree_with_their_batches() -> None:
    """Counted from first principles over HTTP: lines vs request_counts, usage vs usage."""
    with Simulator(batches=60, seed=7, api_key=KEY) as sim:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {KEY}"
        shapes, custom_ids = Counter(), []
        for batch in sim.visible():
            if batch["status"] not in TERMINAL:
                assert batch["output_file_id"] is None and batch["error_file_id"] is None
                continue
            counts = batch["request_counts"]
            for kind in ("output", "error"):
                file_id = batch[f"{kind}_file_id"]
                if not file_id:
                    continue
                response = session.get(f"{sim.url}/files/{file_id}/content")
                meta = session.get(f"{sim.url}/files/{file_id}")
                if not served(sim, batch):
                    assert response.status_code == meta.status_code == 404
                    continue
                assert meta.json()["expires_at"] == ended_at(batch) + RETENTION
                lines = [json.loads(line) for line in response.text.splitlines()]
                custom_ids += [line["custom_id"] for line in lines]
                if kind == "output":
                    assert len(lines) == counts["completed"]
                    if batch["status"] == "completed" and batch.get("usage"):
                        usages = [line["response"]["body"]["usage"] for line in lines]
                        total = sum(u.get("input_tokens", u.get("prompt_tokens")) for u in usages)
                        assert total == batch["usage"]["input_tokens"]
                        assert (
                            sum(u["total_tokens"] for u in usages) == batch["usage"]["total_tokens"]
                        )
                    continue
                failed = [line for line in lines if line["error"] is None or
                          line["error"]["code"] == "request_timeout"]  # fmt: skip
                assert len(failed) == counts["failed"]
                unfinished = len(lines) - len(failed)
                if batch["status"] in ("expired", "cancelled"):
                    assert unfinished == counts["total"] - counts["completed"] - counts["failed"]
                for line in lines:
                    shapes["http" if line["response"] else line["error"]["code"]] += 1
                numbers = [int(c.split("-")[1]) for c in (x["custom_id"] for x in lines)
                           if c.startswith("request-")]  # fmt: skip
                if len(numbers) > 20:
                    assert numbers != sorted(numbers)  # shuffled
    assert {"http", "request_timeout", "batch_expired"} <= set(shapes)  # both error shapes
    assert any("<script>" in c for c in custom_ids) and any('"' in c for c in custom_ids)
    assert any(not c.isascii() for c in custom_ids)
