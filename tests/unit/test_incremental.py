"""The incremental bookkeeping: what a run re-reads, retrieves and remembers."""

from __future__ import annotations

from openai_batches.incremental import AccountProgress


def b(batch_id: str, created_at: int, status: str) -> dict:
    return {"id": batch_id, "created_at": created_at, "status": status}


def test_first_run_reads_everything_and_remembers_open_batches() -> None:
    run = AccountProgress.from_state({}, full=False)
    assert run.first_run
    page = [b("c", 30, "in_progress"), b("b", 20, "completed"), b("a", 10, "finalizing")]
    run.observe(page)
    assert not run.reached_known_history(page)  # a first run never stops early
    state = run.next_state({})
    assert state == {
        "newest_created_at": 30,
        "open": {"c": [30, "in_progress"], "a": [10, "finalizing"]},
    }


def test_later_run_stops_below_the_newest_second_but_not_at_it() -> None:
    previous = {"newest_created_at": 30, "open": {"a": [10, "finalizing"]}}
    run = AccountProgress.from_state(previous, full=False)
    same_second = [b("e", 40, "validating"), b("d", 30, "validating"), b("c", 30, "completed")]
    assert not run.reached_known_history(same_second)
    older = [b("x", 30, "completed"), b("b", 20, "completed")]
    assert run.reached_known_history(older)


def test_open_batches_not_met_on_the_pages_are_retrieved_and_changes_counted() -> None:
    previous = {
        "newest_created_at": 30,
        "open": {"a": [10, "finalizing"], "c": [30, "in_progress"]},
    }
    run = AccountProgress.from_state(previous, full=False)
    run.observe([b("d", 31, "validating"), b("c", 30, "completed")])
    assert run.open_to_retrieve() == ["a"]
    run.observe([b("a", 10, "completed")])
    assert run.status_changes == 2
    assert run.next_state(previous) == {"newest_created_at": 31, "open": {"d": [31, "validating"]}}


def test_full_run_ignores_the_newest_second_but_never_moves_it_back() -> None:
    previous = {"newest_created_at": 50, "open": {}}
    run = AccountProgress.from_state(previous, full=True)
    assert run.first_run
    run.observe([b("a", 40, "completed")])
    assert run.next_state(previous)["newest_created_at"] == 50


def test_a_batch_the_api_forgot_is_no_longer_retrieved() -> None:
    previous = {"newest_created_at": 30, "open": {"gone": [5, "finalizing"]}}
    run = AccountProgress.from_state(previous, full=False)
    assert run.open_to_retrieve() == ["gone"]
    run.forget("gone")
    assert run.next_state(previous)["open"] == {}


def test_paging_goes_on_while_a_page_beats_retrieving_the_open_batches_it_holds() -> None:
    # open at the previous run: four batches just below the known history, one far older
    open_before = {f"o{i}": [90 - i, "in_progress"] for i in range(4)} | {"old": [5, "finalizing"]}
    run = AccountProgress.from_state({"newest_created_at": 100, "open": open_before}, full=False)
    stop = run.stop_rule()
    assert not stop([b("n1", 120, "validating"), b("n2", 110, "validating")])  # all new
    # crosses the known history (100) at 95..101: the next page span (6 s) holds o0..o3
    assert not stop([b("n3", 101, "validating"), b("k1", 95, "completed")])
    # this page brought o0..o3; only "old" remains, far below: retrieving it is cheaper
    assert stop([b(f"o{i}", 90 - i, "completed") for i in range(4)])


def test_a_full_run_never_stops_early() -> None:
    run = AccountProgress.from_state({"newest_created_at": 100}, full=True)
    assert not run.stop_rule()([b("a", 1, "completed")])
