"""Requests in flight together, over the simulator with latency: faster, never more requests.

Golden values come from the simulator's own data (`visible()`, its request log), never from
the code under test.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from batchlens.config import Account, Parallelism, parallelism
from batchlens.errors import UsageError
from batchlens.run.extract import run_extraction
from batchlens.simulator.server import LIST_PATH, Simulator
from helpers import (
    KEY,
    assert_matches_history,
    cli_env,
    extract,
    snapshot,
    stored_batches,
    summary,
)
from openai_batches.api_client import BatchesApi, BatchesApiError
from openai_batches.parallel import (
    gather,
    incremental_segments,
    retrieve_all,
    segmented_pages,
)

LATENCY = 0.1
TERMINAL = {"completed", "failed", "expired", "cancelled"}


@pytest.fixture
def slow_sim() -> Simulator:
    with Simulator(batches=1_000, seed=5, api_key=KEY, latency=LATENCY) as simulator:
        yield simulator


def api(sim: Simulator) -> BatchesApi:
    return BatchesApi(sim.url, KEY, connections=16)


def most_in_flight(sim: Simulator, wanted: Callable[[str], bool]) -> int:
    """The most requests `wanted` picks by path that the simulator held at one moment
    (arrived, not yet answered). Unlike a span of wall time, the CPU a run spends meanwhile
    (imports, the views' check) cannot change it: one after another it is 1."""
    held = [
        (arrived, answered)
        for (_, path, _, _), arrived, answered in zip(
            sim.requests, sim.arrival_times, sim.request_times, strict=True
        )
        if wanted(path)
    ]
    # an answer sorts before an arrival at the same instant
    events = sorted([(a, 1) for a, _ in held] + [(t, -1) for _, t in held])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def answered_span(sim: Simulator, wanted: Callable[[str], bool]) -> tuple[int, float]:
    """How many requests `wanted` picks by path, and seconds from the first answer to the last.

    Measured on the simulator's clock over those requests alone: one after another they
    are at least one latency apart, whatever the run's fixed costs and the machine's load,
    which made a comparison of whole runs' wall times flaky on a busy CI machine.
    """
    times = [
        t
        for (_, path, _, _), t in zip(sim.requests, sim.request_times, strict=True)
        if wanted(path)
    ]
    return len(times), max(times) - min(times)


def test_retrieves_run_in_a_bounded_pool_in_order(slow_sim: Simulator) -> None:
    wanted = [batch["id"] for batch in slow_sim.visible()[:38]] + ["batch_gone_1", "batch_gone_2"]
    expected = {batch["id"]: batch for batch in slow_sim.visible()}
    started = time.monotonic()
    results = list(retrieve_all(api(slow_sim), wanted, workers=8))
    seconds = time.monotonic() - started
    assert [batch_id for batch_id, _ in results] == wanted
    assert [batch for _, batch in results] == [expected.get(i) for i in wanted]
    assert slow_sim.retrieve_requests == 40 and slow_sim.list_requests == 0
    sequential = 40 * LATENCY
    # 8 at a time: five rounds of latency at best, far below one after another
    assert 5 * LATENCY <= seconds < 0.5 * sequential, seconds


def test_a_429_pauses_the_whole_pool_for_its_retry_after(slow_sim: Simulator) -> None:
    slow_sim.inject("429", times=1, on="retrieve", retry_after="1")
    wanted = [batch["id"] for batch in slow_sim.visible()[:64]]
    results = list(retrieve_all(api(slow_sim), wanted, workers=8))
    assert all(batch is not None for _, batch in results)
    statuses = [status for _, _, _, status in slow_sim.requests]
    assert statuses.count(429) == 1 and len(statuses) == 65  # one retry, nothing multiplied
    times = slow_sim.request_times
    limited = times[statuses.index(429)]
    # Requests already on the wire when the 429 came are answered within one round trip;
    # after that, nothing is sent until its Retry-After has passed.
    quiet = [t - limited for t in times if limited + 3 * LATENCY < t < limited + 1.0]
    assert not quiet, quiet
    assert max(times) >= limited + 1.0


def test_a_failure_in_the_pool_stops_it(
    slow_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.02")
    slow_sim.inject("500", on="retrieve")  # every retrieve, every retry
    wanted = [batch["id"] for batch in slow_sim.visible()[:40]]
    client = api(slow_sim)
    with pytest.raises(BatchesApiError, match="HTTP 500 after retries"):
        list(retrieve_all(client, wanted, workers=4))
    # only what the pool had queued was asked for, not all 40
    assert client.retrieve_requests <= 2 * 4


def segment_starts(visible: list[dict], segments: int) -> list[tuple[str, int]]:
    step = len(visible) // segments
    return [(visible[i * step]["id"], visible[i * step]["created_at"]) for i in range(1, segments)]


def test_a_failed_gather_returns_only_once_its_workers_stopped() -> None:
    """A process that lives on (a notebook) must not keep a failed run's requests going."""
    sent: list[int] = []

    def fails(emit) -> None:
        raise BatchesApiError("the first download failed")

    def slow(emit) -> None:
        for n in range(50):
            time.sleep(0.05)  # a request in flight
            sent.append(n)
            if not emit(n):
                return

    with pytest.raises(BatchesApiError):
        list(gather([fails, slow], name="gather-test"))
    after = len(sent)
    assert not [t for t in threading.enumerate() if t.name.startswith("gather-test")]
    time.sleep(0.2)
    assert len(sent) == after < 50


def test_segments_read_what_one_pass_reads_after_creations_and_deletions(
    slow_sim: Simulator,
) -> None:
    before = slow_sim.visible()
    starts = segment_starts(before, 4)
    slow_sim.advance(3_600)
    slow_sim.add_batches(130, same_second=False)
    # a deleted segment start, a batch next to another start, and a few anywhere
    doomed = {starts[1][0], before[len(before) // 4 + 1]["id"], before[5]["id"], before[-1]["id"]}
    assert slow_sim.delete_batches(doomed) == 4
    slow_sim.reset_requests()

    read = [batch for page in segmented_pages(api(slow_sim), starts) for batch in page]

    now = slow_sim.visible()
    assert len(read) == len({batch["id"] for batch in read})  # no batch twice
    assert {batch["id"]: batch for batch in read} == {batch["id"]: batch for batch in now}
    pages = math.ceil(len(now) / 100)
    # the rejected start costs one request; each segment's last page may overlap the next
    assert pages <= slow_sim.list_requests <= pages + 2 * len(starts)
    # at once, not one after another (a wall-time bound failed on a loaded machine)
    assert most_in_flight(slow_sim, lambda path: path == LIST_PATH) >= 2


def test_segments_fall_back_when_starts_are_unknown_or_ignored(slow_sim: Simulator) -> None:
    visible = slow_sim.visible()
    unknown = [("batch_never_was_1", visible[300]["created_at"]), ("batch_never_was_2", 1)]
    read = [batch["id"] for page in segmented_pages(api(slow_sim), unknown) for batch in page]
    assert read == [batch["id"] for batch in visible]  # one pass from the top, in order
    assert slow_sim.list_requests == math.ceil(len(visible) / 100) + 2


@pytest.mark.slow
def test_full_run_in_segments_matches_the_api_and_the_first_run_is_one_pass(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    with Simulator(batches=3_000, seed=9, api_key=KEY, latency=0.01) as sim:
        first = extract(sim, db)
        assert first.returncode == 0, first.stderr
        afters = [q.get("after") for _, path, q, _ in sim.requests if path == LIST_PATH]
        assert len(afters) == 30 and afters[0] is None and all(afters[1:])  # one chain
        visible = sim.visible()
        sim.advance(86_400)
        sim.add_batches(120, same_second=False)
        sim.delete_batches([visible[i]["id"] for i in (0, 999, 1000, 1001, 1500, 2999)])
        sim.reset_requests()
        full = extract(sim, db, "--full")
        assert full.returncode == 0, full.stderr
        # every batch the API shows is stored as it shows it (deleted ones stay stored)
        now = sim.visible()
        stored_now = {b["id"] for b in now}
        list_afters = [q.get("after") for _, path, q, _ in sim.requests if path == LIST_PATH]
        # segments start at loaded batches: cursors that no page of one pass would end on
        page_ends = {now[i]["id"] for i in range(99, len(now), 100)}
        assert sum(1 for a in list_afters if a and a not in page_ends) >= 2, list_afters
        assert summary(full)["pages"] == len(list_afters)
    stored = snapshot_ids(db)
    assert stored_now <= stored
    assert stored - stored_now == {visible[i]["id"] for i in (0, 999, 1000, 1001, 1500, 2999)}
    assert_matches_subset(db, now)


def snapshot_ids(db: Path) -> set[str]:
    from batchlens.storage.duckdb_connection import connect

    with connect(db, read_only=True) as con:
        return {row[0] for row in con.execute("select id from openai_batches.batches").fetchall()}


def assert_matches_subset(db: Path, visible: list[dict]) -> None:
    from helpers import expected_batches, stored_batches

    stored, expected = stored_batches(db), expected_batches(visible)
    different = [i for i in expected if stored[i] != expected[i]]
    assert not different, different[:3]


def scattered_open_batches(sim: Simulator) -> None:
    """Batches that stay open for days, one every 150: paging to each costs more than a retrieve."""
    for _ in range(12):
        sim.add_batches(1, scenario="slow_finalizing")
        sim.add_batches(150, same_second=False, scenario="failed_validation")
    sim.advance(3 * 3_600)  # the failed ones are terminal, the slow ones still finalizing


def test_concurrency_changes_neither_requests_nor_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latency = 0.05
    outcomes = []
    for workers in ("1", "8"):
        monkeypatch.setenv("SOURCES__OPENAI_BATCHES__RETRIEVE_CONCURRENCY", workers)
        db = tmp_path / f"c{workers}.duckdb"
        with Simulator(batches=200, seed=3, api_key=KEY, latency=latency) as sim:
            scattered_open_batches(sim)
            account = Account(name="default", base_url=sim.url, api_key=KEY)
            run_extraction(db, account, build_views=False, requests="none")
            open_before = {b["id"] for b in sim.visible() if b["status"] not in TERMINAL}
            sim.advance(600)
            sim.reset_requests()
            numbers = run_extraction(db, account, build_views=False, requests="none")
            retrieved = sorted(p.rsplit("/", 1)[1] for _, p, _, _ in sim.requests if p != LIST_PATH)
            assert set(retrieved) <= open_before and len(retrieved) == len(set(retrieved))
            assert_matches_history(db, sim)
            counts = (numbers.pages, numbers.requests, numbers.new, numbers.updated)
            span = answered_span(sim, lambda path: path.startswith(LIST_PATH + "/"))
            outcomes.append((sim.list_requests, retrieved, counts, numbers.still_open, span))
    sequential, pooled = outcomes
    assert sequential[:4] == pooled[:4]
    (count, one_by_one), (_, at_once) = sequential[4], pooled[4]
    assert count >= 8, "the scenario must retrieve open batches"
    assert one_by_one >= (count - 1) * latency  # each retrieve waited for the one before
    # eight at a time: the retrieves' latency overlaps, far below one after another
    assert at_once < 0.5 * (count - 1) * latency, (at_once, one_by_one)


def known_history(size: int, open_at: set[int]) -> list[tuple[str, int, bool]]:
    """(id, created_at, open) newest first, open at the given positions."""
    return [(f"b{n}", 1_000_000 - n, n in open_at) for n in range(size)]


def test_an_incremental_plan_splits_the_pages_worth_reading() -> None:
    # pages 1-7 hold three open batches each, page 8 one: one pass reads pages 0-7
    dense = {p * 100 + k for p in range(10) for k in (5, 50, 90) if p != 8} | {850}
    plan = incremental_segments(known_history(1_000, dense), 4)
    assert plan.starts == [("b200", 999_800), ("b400", 999_600), ("b600", 999_400)]
    assert plan.end == ("b799", 999_201)
    # the last page read ends within a page past the end: open batches below are retrieved
    # while the pages are read
    assert plan.retrieve_below == 999_101  # b899's second
    # eight pages make at most four segments (two pages each at least)
    assert len(incremental_segments(known_history(1_000, dense), 8).starts) == 3
    # no page past the end's page is known: nothing is retrieved early
    assert incremental_segments(known_history(850, dense), 4).retrieve_below is None
    # three pages worth reading make one segment: one pass, its own stop rule
    assert incremental_segments(known_history(1_000, {105, 110, 205, 210}), 4) == ([], None, None)
    assert incremental_segments(known_history(1_000, dense), 1) == ([], None, None)
    # the history ends while pages are still worth reading: the last segment reads to the end
    everywhere = {p * 100 + k for p in range(5) for k in (1, 2)}
    assert incremental_segments(known_history(450, everywhere), 4) == (
        [("b250", 999_750)],
        None,
        None,
    )


def dense_open_batches(sim: Simulator) -> None:
    """Eight pages with three batches still open each, on top of an older history with a
    few open batches far apart."""
    for _ in range(4):
        sim.add_batches(1, scenario="slow_finalizing")
        sim.add_batches(150, same_second=False, scenario="failed_validation")
    for _ in range(8):
        for _ in range(3):
            sim.add_batches(1, scenario="slow_finalizing")
            sim.add_batches(32, same_second=False, scenario="failed_validation")
        sim.add_batches(1, scenario="failed_validation")
    sim.advance(3 * 3_600)  # the failed ones are terminal, the slow ones still finalizing


def test_an_incremental_run_reads_its_pages_in_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = []
    # an incremental run's pages are read as wide as its retrieves: `full_segments` is
    # for --full only
    monkeypatch.setenv("SOURCES__OPENAI_BATCHES__FULL_SEGMENTS", "1")
    for segments in ("1", "4"):
        monkeypatch.setenv("SOURCES__OPENAI_BATCHES__RETRIEVE_CONCURRENCY", segments)
        db = tmp_path / f"i{segments}.duckdb"
        with Simulator(batches=1_000, seed=4, api_key=KEY, latency=0.03) as sim:
            dense_open_batches(sim)
            account = Account(name="default", base_url=sim.url, api_key=KEY)
            run_extraction(db, account, build_views=False, requests="none")
            before = sim.visible()
            open_before = sum(1 for b in before if b["status"] not in TERMINAL)
            sim.advance(600)
            new = sim.add_batches(130, same_second=False)
            # a segment's start and an open batch are deleted between the runs,
            # and one far below the pages (its early retrieve meets a 404)
            gone = [
                before[400]["id"],
                next(b["id"] for b in before[300:] if b["status"] not in TERMINAL),
                next(b["id"] for b in before[1_000:] if b["status"] not in TERMINAL),
            ]
            assert sim.delete_batches(gone) == 3
            sim.reset_requests()
            numbers = run_extraction(db, account, build_views=False, requests="none")
            assert numbers.new == 130 and set(new) <= stored_batches(db).keys()
            requests = sim.list_requests + sim.retrieve_requests
            assert requests <= math.ceil(130 / 100) + 1 + open_before
            assert_matches_subset(db, sim.visible())  # every batch shown is stored as shown
            afters = [q.get("after") for _, path, q, _ in sim.requests if path == LIST_PATH]
            in_flight = most_in_flight(sim, lambda path: path == LIST_PATH)
            outcomes.append((afters, numbers.still_open, in_flight, requests))
            timed = list(zip(sim.requests, sim.request_times, strict=True))
            last_page = max(t for (_, path, _, _), t in timed if path == LIST_PATH)
            early = [
                p for (_, p, _, _), t in timed if p.startswith(LIST_PATH + "/") and t < last_page
            ]
            # one pass retrieves after its pages; segments retrieve the old open batches
            # (below every page) while the pages are read
            assert bool(early) == (segments == "4"), early
            retrieves = [p for _, p, _, _ in sim.requests if p.startswith(LIST_PATH + "/")]
            assert len(retrieves) == len(set(retrieves))  # the 404 is not asked again
    (
        (one_pass, still_open, one_by_one, sent),
        (segmented, same_open, at_once, more),
    ) = outcomes
    assert still_open == same_open
    assert more <= sent + 3  # at most a page more at each of the three boundaries
    assert len(one_pass) >= 8 and one_pass[0] is None and all(one_pass[1:])  # one chain
    # the segments start at loaded batches, which are no page end of the one pass
    assert len({a for a in segmented if a} - set(one_pass)) >= 2, segmented
    # (their speed at a latency: BENCHMARKS.md; here, that they were in flight together)
    assert one_by_one == 1 and at_once >= 2, (one_by_one, at_once)


def test_a_failing_retrieve_fails_the_run_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    with Simulator(batches=200, seed=3, api_key=KEY) as sim:
        scattered_open_batches(sim)
        assert extract(sim, db).returncode == 0
        sim.advance(600)
        before = snapshot(db)
        sim.inject("503", on="retrieve")
        run = extract(sim, db)
    assert run.returncode == 1
    # progress lines aside (a loaded machine is slow), one line says what failed
    errors = [line for line in run.stderr.splitlines() if " so far (" not in line]
    assert len(errors) == 1 and "HTTP 503 after retries" in errors[0], run.stderr
    assert snapshot(db) == before


def test_a_bad_concurrency_setting_is_a_usage_error(sim: Simulator, db: Path) -> None:
    run = extract(sim, db, env=cli_env(SOURCES__OPENAI_BATCHES__RETRIEVE_CONCURRENCY="0"))
    assert run.returncode == 2
    assert "retrieve_concurrency" in run.stderr and run.stderr.count("\n") == 1
    assert not db.exists()


@pytest.mark.parametrize("value", ["-2", "many", "65", "2.5"])
def test_parallel_settings_are_whole_numbers_from_1_to_64(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__OPENAI_BATCHES__FULL_SEGMENTS", value)
    with pytest.raises(UsageError, match="full_segments"):
        parallelism()
    monkeypatch.setenv("SOURCES__OPENAI_BATCHES__FULL_SEGMENTS", "2")
    assert parallelism() == Parallelism(retrieve_concurrency=8, full_segments=2)


def test_files_download_in_the_pool_with_the_same_rows_and_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    latency = 0.02
    outcomes = []
    for workers in ("1", "8"):
        monkeypatch.setenv("SOURCES__OPENAI_BATCHES__RETRIEVE_CONCURRENCY", workers)
        db = tmp_path / f"f{workers}.duckdb"
        with Simulator(batches=300, seed=9, api_key=KEY, latency=latency) as sim:
            account = Account(name="default", base_url=sim.url, api_key=KEY)
            numbers = run_extraction(db, account, build_views=False, requests="errors")
            downloads = sorted(p for _, p, _, _ in sim.requests if p.startswith("/v1/files"))
            with duckdb.connect(str(db), read_only=True) as con:
                rows = con.sql(
                    "select batch_id, custom_id, error_code from openai_batches.batch_requests"
                ).fetchall()
                ledger = con.sql(
                    "select file_id, state, lines from openai_batches.batch_files"
                ).fetchall()
            span = answered_span(sim, lambda path: path.startswith("/v1/files"))
            outcomes.append((downloads, sorted(rows), sorted(ledger), numbers.files, span))
    sequential, pooled = outcomes
    assert sequential[:4] == pooled[:4]
    assert len(sequential[2]) >= 10 and len(sequential[1]) > 1_000, "the history must have files"
    (count, one_by_one), (_, at_once) = sequential[4], pooled[4]
    assert one_by_one >= (count - 1) * latency  # each download waited for the one before
    # eight at a time saves at least half the downloads' latency (parsing the rows is not
    # what the pool overlaps: it holds the GIL)
    assert at_once < one_by_one - 0.5 * (count - 1) * latency, (at_once, one_by_one)
    # a worker holds one connection at a time (expired files ask the Files API after their
    # 404): urllib3 warns when more are out than the pool keeps
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
