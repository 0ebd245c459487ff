"""The simulator must behave like the real Batch API, or every test built on it proves nothing.

Expectations are computed here from first principles (sorting, counting, the documented
lifecycle), never read back from the simulator's own helpers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from batchlens.simulator import DEFAULT_API_KEY, DEFAULT_NOW, Simulator, generate_history, render

DAY = 86_400
ALL_STATUSES = {
    "validating",
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
}
REQUIRED_KEYS = {
    "id",
    "object",
    "endpoint",
    "errors",
    "input_file_id",
    "completion_window",
    "status",
    "output_file_id",
    "error_file_id",
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
    "request_counts",
    "metadata",
}
STAGES = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


def client(sim: Simulator, key: str | None = None) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key or sim.api_key}"
    return session


def list_page(sim: Simulator, session: requests.Session | None = None, **params: Any) -> Any:
    response = (session or client(sim)).get(f"{sim.url}/batches", params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def page_all(sim: Simulator, limit: int = 100) -> list[dict[str, Any]]:
    """The SDK's loop: the cursor is the last object's id; stop when has_more is false."""
    session, batches, after = client(sim), [], None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"after": after} if after else {})}
        page = list_page(sim, session, **params)
        assert page["object"] == "list"
        if page["data"]:
            assert page["first_id"] == page["data"][0]["id"]
            assert page["last_id"] == page["data"][-1]["id"]
        batches.extend(page["data"])
        if not page["has_more"]:
            return batches
        after = page["data"][-1]["id"]


def newest_first(batches: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(batches, key=lambda batch: (batch["created_at"], batch["id"]), reverse=True)
    return [batch["id"] for batch in ordered]


def check_batch(batch: dict[str, Any]) -> None:
    """The documented invariants of one Batch object, checked from scratch."""
    keys = set(batch)
    assert keys >= REQUIRED_KEYS, REQUIRED_KEYS - keys
    assert keys - REQUIRED_KEYS <= {"model", "usage"}
    assert batch["object"] == "batch" and batch["completion_window"] == "24h"
    assert batch["id"].startswith("batch_") and len(batch["id"]) == len("batch_") + 24
    assert batch["expires_at"] == batch["created_at"] + DAY
    status = batch["status"]
    assert status in ALL_STATUSES
    stamps = {name: batch[name] for name in STAGES}
    ts = {name: at for name, at in stamps.items() if at is not None}
    created = batch["created_at"]
    assert all(at >= created for at in ts.values())
    # The main path is ordered, and each status shows exactly the stages it implies.
    path = [batch[name] for name in ("in_progress_at", "finalizing_at", "completed_at")]
    present = [at for at in path if at is not None]
    assert present == sorted(present) and path[: len(present)] == present
    expected_set = {
        "validating": set(),
        "in_progress": {"in_progress_at"},
        "finalizing": {"in_progress_at", "finalizing_at"},
        "completed": {"in_progress_at", "finalizing_at", "completed_at"},
        "expired": {"in_progress_at", "expired_at"},
    }
    if status in expected_set:
        assert set(ts) == expected_set[status], (status, ts)
    if status == "failed":
        assert set(ts) - {"in_progress_at"} == {"failed_at"}
        assert batch["failed_at"] >= (batch["in_progress_at"] or created)
        assert batch["errors"]["object"] == "list" and batch["errors"]["data"]
        for error in batch["errors"]["data"]:
            assert set(error) == {"code", "message", "param", "line"}
    else:
        assert batch["errors"] is None
    if status in ("cancelling", "cancelled"):
        assert set(ts) - {"in_progress_at"} == (
            {"cancelling_at"} if status == "cancelling" else {"cancelling_at", "cancelled_at"}
        )
        if status == "cancelled":
            assert 0 < batch["cancelled_at"] - batch["cancelling_at"] <= 600
    if status == "expired":
        assert batch["expired_at"] == created + DAY
    counts = batch["request_counts"]
    assert set(counts) == {"total", "completed", "failed"}
    assert counts["completed"] >= 0 and counts["failed"] >= 0
    assert counts["completed"] + counts["failed"] <= counts["total"]
    if batch["in_progress_at"] is None:
        assert counts["completed"] == counts["failed"] == 0
    if status == "completed":
        assert counts["completed"] + counts["failed"] == counts["total"]
        if counts["completed"] == 0:
            assert batch["output_file_id"] is None and batch["error_file_id"] is not None
    usage = batch.get("usage")
    if usage is not None:
        assert status == "completed"
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert usage["input_tokens_details"]["cached_tokens"] <= usage["input_tokens"]
    if status in ("validating", "in_progress", "finalizing", "cancelling"):
        assert batch["output_file_id"] is None and batch["error_file_id"] is None
    assert batch["metadata"] is None or all(
        isinstance(k, str) and isinstance(v, str) for k, v in batch["metadata"].items()
    )


# --- listing and retrieval --------------------------------------------------------------------


def test_pagination_covers_every_batch_once_newest_first(sim: Simulator) -> None:
    expected = [
        render(plan, DEFAULT_NOW) for plan in generate_history(500, 7, DEFAULT_NOW)
    ]  # the plans, independently re-sorted below
    for limit in (100, 7):
        batches = page_all(sim, limit)
        ids = [batch["id"] for batch in batches]
        assert len(ids) == len(set(ids)) == 500
        assert ids == newest_first(expected)
        assert ids == newest_first(batches)


def test_default_limit_is_20_and_last_page_has_no_more(sim: Simulator) -> None:
    page = list_page(sim)
    assert len(page["data"]) == 20 and page["has_more"] is True
    all_ids = [batch["id"] for batch in page_all(sim)]
    last = list_page(sim, limit=100, after=all_ids[-3])
    assert [b["id"] for b in last["data"]] == all_ids[-2:] and last["has_more"] is False
    empty = list_page(sim, after=all_ids[-1])
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


@pytest.mark.parametrize("limit", ["0", "101", "-5", "ten"])
def test_limit_out_of_bounds_is_400(sim: Simulator, limit: str) -> None:
    response = client(sim).get(f"{sim.url}/batches", params={"limit": limit})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == "limit"


def test_limit_bounds_themselves_are_fine(sim: Simulator) -> None:
    assert len(list_page(sim, limit=1)["data"]) == 1
    assert len(list_page(sim, limit=100)["data"]) == 100


def test_unknown_after_is_400(sim: Simulator) -> None:
    response = client(sim).get(f"{sim.url}/batches", params={"after": "batch_nope"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "No such batch: batch_nope"
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}, {"X": "y"}])
def test_wrong_or_missing_key_is_401_without_echo(sim: Simulator, headers: dict) -> None:
    for path in ("/batches", "/batches/batch_x", "/files"):
        response = requests.get(sim.url + path, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        assert "sk-wrong" not in response.text and DEFAULT_API_KEY not in response.text


def test_custom_api_key() -> None:
    with Simulator(batches=5, api_key="sk-other") as sim:
        assert requests.get(f"{sim.url}/batches", headers={"Authorization": "Bearer sk-other"})
        assert client(sim, DEFAULT_API_KEY).get(f"{sim.url}/batches").status_code == 401


def test_retrieve_and_not_found(sim: Simulator) -> None:
    session = client(sim)
    listed = list_page(sim, limit=5)["data"]
    for batch in listed:
        response = session.get(f"{sim.url}/batches/{batch['id']}")
        assert response.status_code == 200 and response.json() == batch
    missing = session.get(f"{sim.url}/batches/batch_000000000000000000000000")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    for path in ("/files", "/batches/a/b", "/../x"):
        other = session.get(sim.url + path)
        assert other.status_code == 404 and "error" in other.json()


def test_keep_alive_and_content_length(sim: Simulator) -> None:
    response = client(sim).get(f"{sim.url}/batches", params={"limit": 3})
    assert response.raw.version == 11
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers.get("Connection", "").lower() != "close"


# --- the history ------------------------------------------------------------------------------


def test_default_history_shows_all_eight_statuses(sim: Simulator) -> None:
    statuses = Counter(batch["status"] for batch in page_all(sim))
    assert set(statuses) == ALL_STATUSES
    assert statuses["completed"] > sum(statuses.values()) / 2


def test_every_batch_obeys_the_invariants(sim: Simulator) -> None:
    for batch in page_all(sim):
        check_batch(batch)


def test_lifecycles_are_consistent_over_time() -> None:
    """Replay many plans at many instants: statuses only move forward, counts only grow."""
    order = ["validating", "in_progress", "finalizing", "cancelling", "terminal"]
    rank = {status: i for i, status in enumerate(order)}

    def stage(status: str) -> int:
        return rank.get(status, len(order) - 1)

    for plan in generate_history(400, 11, DEFAULT_NOW):
        instants = {plan.created_at - 1, plan.created_at, DEFAULT_NOW + 5 * DAY}
        for name in STAGES:
            at = getattr(plan, name)
            if at is not None:
                instants.update({at - 1, at, at + 1, (at + plan.created_at) // 2})
        previous: dict[str, Any] | None = None
        for clock in sorted(instants):
            batch = render(plan, clock)
            if clock < plan.created_at:
                assert batch is None
                continue
            assert batch is not None
            check_batch(batch)
            if previous is not None:
                assert stage(batch["status"]) >= stage(previous["status"])
                for key in ("completed", "failed"):
                    assert batch["request_counts"][key] >= previous["request_counts"][key]
                for name in STAGES:  # a timestamp, once shown, never changes
                    if previous[name] is not None:
                        assert batch[name] == previous[name]
            previous = batch


def test_history_contains_the_reported_quirks() -> None:
    batches = [render(plan, DEFAULT_NOW) for plan in generate_history(2000, 3, DEFAULT_NOW)]
    assert all(batch is not None for batch in batches)
    completed = [b for b in batches if b["status"] == "completed"]
    all_failed = [
        b for b in completed if b["request_counts"]["failed"] == b["request_counts"]["total"]
    ]
    assert all_failed and all(b["output_file_id"] is None for b in all_failed)
    assert any(0 < b["request_counts"]["failed"] < b["request_counts"]["total"] for b in completed)
    assert any(b["completed_at"] - b["finalizing_at"] > DAY for b in completed)
    assert any("usage" in b and b["usage"] is None for b in completed)
    assert sum("model" not in b for b in batches) / len(batches) == pytest.approx(0.05, abs=0.02)
    validation = [b for b in batches if b["status"] == "failed" and b["in_progress_at"] is None]
    run_failed = [b for b in batches if b["status"] == "failed" and b["in_progress_at"]]
    assert validation and run_failed
    errors = [e for b in validation for e in b["errors"]["data"]]
    assert any(e["code"] == "invalid_json" and e["line"] == 3 for e in errors)
    assert any(e["code"] == "token_limit_exceeded" and e["line"] is None for e in errors)
    expired = [b for b in batches if b["status"] == "expired"]
    assert any(b["output_file_id"] and b["request_counts"]["completed"] for b in expired)
    assert {b["endpoint"] for b in batches} >= {
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/completions",
        "/v1/moderations",
    }
    assert any(b["metadata"] is None for b in batches) and any(b["metadata"] == {} for b in batches)
    same_second = Counter(b["created_at"] for b in batches)
    assert max(same_second.values()) >= 3
    span = max(b["created_at"] for b in batches) - min(b["created_at"] for b in batches)
    assert 50 * DAY < span <= 60 * DAY


def test_same_seed_same_history_other_seed_other_history() -> None:
    assert generate_history(300, 5, DEFAULT_NOW) == generate_history(300, 5, DEFAULT_NOW)
    assert {p.id for p in generate_history(300, 5)}.isdisjoint(
        p.id for p in generate_history(300, 6)
    )
    with Simulator(batches=50, seed=9) as first, Simulator(batches=50, seed=9) as second:
        assert page_all(first) == page_all(second)


def test_small_histories_work() -> None:
    for n in (0, 1, 3, 10):
        assert len(generate_history(n, 1)) == n
    with Simulator(batches=0) as sim:
        assert list_page(sim)["data"] == []


# --- the simulated clock ----------------------------------------------------------------------


def test_advance_finishes_a_batch_stuck_in_finalizing(sim: Simulator) -> None:
    stuck = [
        b
        for b in page_all(sim)
        if b["status"] == "finalizing" and sim.clock - b["finalizing_at"] > DAY
    ]
    assert stuck, "the default history has a batch finalizing for days"
    sim.advance(2 * DAY)
    for old in stuck:
        now = client(sim).get(f"{sim.url}/batches/{old['id']}").json()
        assert now["status"] == "completed"
        assert now["finalizing_at"] == old["finalizing_at"]
        assert sim.clock >= now["completed_at"] > old["finalizing_at"] + DAY
        assert (
            now["request_counts"]["completed"] + now["request_counts"]["failed"]
            == (now["request_counts"]["total"])
        )


def test_advance_moves_open_batches_forward(sim: Simulator) -> None:
    before = {b["id"]: b for b in sim.visible()}
    sim.advance(3 * DAY)  # beyond every 24 h window and every finalizing
    after = {b["id"]: b for b in sim.visible()}
    assert after.keys() == before.keys()
    assert {b["status"] for b in after.values()} <= {"completed", "failed", "expired", "cancelled"}
    for batch_id, old in before.items():
        if old["status"] == "in_progress":
            assert (
                after[batch_id]["request_counts"]["completed"]
                >= (old["request_counts"]["completed"])
            )
        if old["status"] in ("completed", "failed", "expired", "cancelled"):
            assert after[batch_id] == old  # terminal batches never change


def test_counts_grow_while_in_progress(sim: Simulator) -> None:
    running = [b for b in sim.visible() if b["status"] == "in_progress"]
    growing = [b for b in running if b["request_counts"]["total"] >= 100]
    assert growing
    sim.advance(3600)
    later = {b["id"]: b for b in sim.visible()}
    assert any(
        later[b["id"]]["request_counts"]["completed"] > b["request_counts"]["completed"]
        for b in growing
    )


def test_add_batches_in_the_same_second(sim: Simulator) -> None:
    clock = sim.clock
    ids = sim.add_batches(6)
    assert len(set(ids)) == 6 and sim.clock == clock
    first_page = list_page(sim, limit=10)["data"]
    assert [b["id"] for b in first_page[:6]] == sorted(ids, reverse=True)
    assert {b["created_at"] for b in first_page[:6]} == {clock}
    assert {b["status"] for b in first_page[:6]} == {"validating"}
    assert len(page_all(sim)) == 506
    later = sim.add_batches(3, same_second=False, scenario="failed_validation")
    assert sim.clock == clock + 2
    created = {b["id"]: b["created_at"] for b in sim.visible()}
    assert [created[i] for i in later] == [clock, clock + 1, clock + 2]
    sim.advance(DAY)
    shown = {b["id"]: b for b in sim.visible()}
    assert {shown[i]["status"] for i in later} == {"failed"}


def test_literal_history_is_served_verbatim() -> None:
    golden = [
        {"id": "batch_a", "object": "batch", "created_at": 100, "status": "completed", "x": [1]},
        {"id": "batch_c", "object": "batch", "created_at": 300, "status": "failed"},
        {"id": "batch_b", "object": "batch", "created_at": 300, "status": "validating"},
    ]
    with Simulator(history=golden) as sim:
        sim.advance(10 * DAY)  # no lifecycle: the clock changes nothing
        assert page_all(sim, limit=1) == [golden[1], golden[2], golden[0]]
        assert client(sim).get(f"{sim.url}/batches/batch_a").json() == golden[0]


# --- faults -----------------------------------------------------------------------------------


def test_429_carries_retry_after_then_recovers(sim: Simulator) -> None:
    sim.inject("429", times=2, retry_after="0")
    session = client(sim)
    for _ in range(2):
        response = session.get(f"{sim.url}/batches")
        assert response.status_code == 429 and response.headers["Retry-After"] == "0"
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert session.get(f"{sim.url}/batches").status_code == 200
    assert sim.faults_injected == 2
    sim.inject("429", times=1)
    assert session.get(f"{sim.url}/batches").headers["Retry-After"] == "1"


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_errors(sim: Simulator, kind: str) -> None:
    sim.inject(kind, times=1)
    response = client(sim).get(f"{sim.url}/batches")
    assert response.status_code == int(kind)
    if kind == "502":
        assert response.headers["Content-Type"].startswith("text/html")
    else:
        assert response.json()["error"]["type"] == "server_error"


def test_drop_closes_the_socket(sim: Simulator) -> None:
    sim.inject("drop", times=1)
    session = client(sim)
    with pytest.raises(requests.ConnectionError):
        session.get(f"{sim.url}/batches", timeout=5)
    assert session.get(f"{sim.url}/batches", timeout=5).status_code == 200
    assert [status for *_, status in sim.requests] == [0, 200]


def test_timeout_outlasts_the_client(sim: Simulator) -> None:
    sim.inject("timeout", times=1, delay=1.0)
    with pytest.raises(requests.Timeout):
        client(sim).get(f"{sim.url}/batches", timeout=0.2)
    assert client(sim).get(f"{sim.url}/batches", timeout=5).status_code == 200


def test_malformed_and_html_bodies_come_with_200(sim: Simulator) -> None:
    sim.inject("malformed", times=1)
    response = client(sim).get(f"{sim.url}/batches")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    sim.inject("html", times=1, on="retrieve")
    batch_id = list_page(sim, limit=1)["data"][0]["id"]
    response = client(sim).get(f"{sim.url}/batches/{batch_id}")
    assert response.status_code == 200
    assert response.json() == {"html-message": "<html>upstream error</html>"}


def test_stuck_cursor_and_empty_more(sim: Simulator) -> None:
    first = list_page(sim, limit=10)
    sim.inject("stuck_cursor", times=1)
    stuck = list_page(sim, limit=10, after=first["last_id"])
    assert stuck["data"] == first["data"] and stuck["has_more"] is True
    sim.inject("empty_more", times=1)
    empty = list_page(sim, limit=10, after=first["last_id"])
    assert empty["data"] == [] and empty["has_more"] is True
    moved = list_page(sim, limit=10, after=first["last_id"])
    assert moved["data"][0]["id"] != first["data"][0]["id"]


def test_ms_timestamps(sim: Simulator) -> None:
    normal = list_page(sim, limit=5)["data"]
    sim.inject("ms_timestamps", times=2)
    scaled = list_page(sim, limit=5)["data"]
    for plain, milli in zip(normal, scaled, strict=True):
        assert milli["created_at"] == plain["created_at"] * 1000
        assert milli["expires_at"] == plain["expires_at"] * 1000
        assert (milli["completed_at"] is None) == (plain["completed_at"] is None)
    one = client(sim).get(f"{sim.url}/batches/{normal[0]['id']}").json()
    assert one["created_at"] == normal[0]["created_at"] * 1000


def test_every_nth_matching_request_is_faulted(sim: Simulator) -> None:
    sim.inject("500", every=3, on="list")
    session = client(sim)
    batch_id = list_page(sim, limit=1)["data"][0]["id"]  # list request 1
    statuses = []
    for _ in range(6):
        statuses.append(session.get(f"{sim.url}/batches").status_code)  # list requests 2..7
        assert session.get(f"{sim.url}/batches/{batch_id}").status_code == 200
    assert statuses == [200, 500, 200, 200, 500, 200]
    assert sim.faults_injected == 2
    sim.clear_faults()
    assert all(session.get(f"{sim.url}/batches").ok for _ in range(4))


def test_unknown_fault_kind_is_rejected(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.inject("teapot")
    with pytest.raises(ValueError):
        sim.inject("500", on="files")


# --- accounting and remote control -------------------------------------------------------------


def test_request_accounting(sim: Simulator) -> None:
    session = client(sim)
    session.get(f"{sim.url}/batches", params={"limit": 2, "after": "batch_nope"})
    session.get(f"{sim.url}/batches/batch_nope")
    requests.get(f"{sim.url}/batches")
    assert sim.requests == [
        ("GET", "/v1/batches", {"limit": "2", "after": "batch_nope"}, 400),
        ("GET", "/v1/batches/batch_nope", {}, 404),
        ("GET", "/v1/batches", {}, 401),
    ]
    assert (sim.list_requests, sim.retrieve_requests) == (2, 1)
    sim.reset_requests()
    assert sim.requests == [] and sim.list_requests == 0


def test_control_endpoints(sim: Simulator) -> None:
    base = sim.url.removesuffix("/v1") + "/_sim"
    clock = sim.clock
    assert requests.post(f"{base}/advance", params={"seconds": 60}).json()["clock"] == clock + 60
    ids = requests.post(f"{base}/add", params={"k": 4, "same_second": 1}).json()["ids"]
    history = requests.get(f"{base}/history").json()
    assert history == sim.visible() and len(history) == 504
    assert {b["id"] for b in history[:4]} == set(ids)
    inject = {"kind": "503", "times": 1, "on": "list"}
    assert requests.post(f"{base}/inject", data=json.dumps(inject)).ok
    assert client(sim).get(f"{sim.url}/batches").status_code == 503
    requests.post(f"{base}/inject", json={"kind": "500"})
    requests.post(f"{base}/clear")
    assert client(sim).get(f"{sim.url}/batches").status_code == 200
    logged = requests.get(f"{base}/requests").json()
    assert [r["status"] for r in logged] == [503, 200]
    assert logged[0] == {"method": "GET", "path": "/v1/batches", "query": {}, "status": 503}
    assert requests.post(f"{base}/inject", json={"kind": "teapot"}).status_code == 400


def test_serve_forever_runs_until_sigterm() -> None:
    code = "from batchlens.simulator import serve_forever; serve_forever(0, 20, 1, 'sk-cli')"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://"))
        assert "sk-cli" in line
        page = requests.get(f"{url}/batches", headers={"Authorization": "Bearer sk-cli"}).json()
        assert len(page["data"]) == 20
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_control_endpoints_drive_a_running_simulator() -> None:
    """docs/development.md's /_sim/ rows, over HTTP: latency, add, delete, state, history."""
    with Simulator(batches=30, seed=4) as simulator:
        control = simulator.url.rsplit("/v1", 1)[0] + "/_sim/"
        auth = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        assert requests.post(control + "latency?seconds=0.2", timeout=5).json() == {"latency": 0.2}
        answer = requests.get(simulator.url + "/batches?limit=1", headers=auth, timeout=5)
        assert answer.status_code == 200 and answer.elapsed.total_seconds() >= 0.2
        requests.post(control + "latency?seconds=0", timeout=5)
        added = requests.post(control + "add?k=2", timeout=5).json()["ids"]
        assert requests.get(control + "state", timeout=5).json()["batches"] == 32
        deleted = requests.post(control + "delete?ids=" + ",".join(added), timeout=5).json()
        assert deleted == {"deleted": 2}
        listed = {batch["id"] for batch in requests.get(control + "history", timeout=5).json()}
        assert len(listed) == 30 and not listed & set(added)
        gone = requests.get(f"{simulator.url}/batches/{added[0]}", headers=auth, timeout=5)
        assert gone.status_code == 404
        bad = requests.post(control + "latency?seconds=soon", timeout=5)
        assert bad.status_code == 400


def test_an_every_rule_lets_the_retry_of_its_fault_through() -> None:
    """In flight together, a retry may arrive on the rule's turn: the next request takes it."""
    from batchlens.simulator.faults import Fault, FaultBook

    book = FaultBook()
    book.add(Fault("500", every=2, on="any"))
    drawn = [
        (request, book.draw("list", request) is not None)
        for request in ("a", "b", "c", "b", "d", "e", "f", "d")
    ]
    # b faulted; its retry comes on the 2nd turn after and passes, so d takes that turn;
    # d's retry comes when the cadence is not due, as one after another always is
    assert drawn == [("a", False), ("b", True), ("c", False), ("b", False), ("d", True),
                     ("e", False), ("f", True), ("d", False)]  # fmt: skip
    assert book.injected == 3
