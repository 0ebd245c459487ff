"""A read of the whole list in steps: what is left to read after each page, as state."""

from __future__ import annotations

from openai_batches.incremental import AccountProgress, Part, PartPage, Walk


def page(index: int, ids: list[str], created: int, through: int | None = None, done=False):
    batches = [{"id": i, "created_at": created, "status": "completed"} for i in ids]
    after = (ids[-1], created) if ids else None
    return PartPage(index, batches, after, index if through is None else through, done)


S1, S2 = ("s1", 200), ("s2", 100)


def test_one_part_goes_on_after_the_last_page_committed() -> None:
    walk = Walk("first", [Part(None, None)])
    assert walk.reads_the_top and not walk.done
    walk.advance(page(0, ["a", "b"], 300))
    assert walk.remaining() == [Part(("b", 300), None)]
    assert not walk.reads_the_top
    assert (walk.batches, walk.oldest) == (2, 300)
    walk.advance(page(0, ["c"], 250, done=True))
    assert walk.done and walk.remaining() == []


def test_a_dead_part_is_read_by_the_part_above_and_left_out() -> None:
    walk = Walk("full", [Part(None, S1), Part(S1, S2), Part(S2, None)])
    # part 1's start is gone: part 0 reads through to part 1's stop
    walk.advance(page(0, ["a"], 300, through=1))
    assert walk.remaining() == [Part(("a", 300), S2), Part(S2, None)]
    walk.advance(page(2, ["z"], 50, done=True))
    assert walk.remaining() == [Part(("a", 300), S2)]
    walk.advance(page(0, ["m"], 150, through=1, done=True))
    assert walk.done


def test_parts_not_read_yet_are_kept_as_they_were() -> None:
    walk = Walk("full", [Part(None, S1), Part(S1, None)], unmet={"o1", "o2"})
    walk.advance(page(1, ["x"], 180))
    assert walk.remaining() == [Part(None, S1), Part(("x", 180), None)]
    assert walk.reads_the_top


def test_the_state_round_trips_and_says_it_was_resumed() -> None:
    walk = Walk("full", [Part(None, S1), Part(S1, None)], unmet={"o2", "o1"})
    walk.advance(page(1, ["x"], 180))
    state = walk.to_state()
    assert state == {
        "kind": "full",
        "parts": [[None, None, "s1", 200], ["x", 180, None, None]],
        "unmet": ["o1", "o2"],
        "batches": 1,
        "oldest": 180,
    }
    again = Walk.from_state(state)
    assert again is not None and again.resumed and not walk.resumed
    assert again.remaining() == walk.remaining() and again.to_state() == state
    assert Walk.from_state(None) is None and Walk.from_state({}) is None


def test_a_step_that_reads_part_of_the_list_keeps_the_open_batches_it_did_not_meet() -> None:
    previous = {
        "newest_created_at": 30,
        "open": {"a": [10, "finalizing"], "c": [30, "in_progress"]},
    }
    run = AccountProgress.from_state(previous, full=False)
    run.observe([{"id": "c", "created_at": 30, "status": "completed"}])
    assert run.next_state(previous)["open"] == {"a": [10, "finalizing"]}


def test_what_a_walk_will_still_read_is_not_retrieved_first() -> None:
    walk = Walk("full", [Part(None, S1), Part(S1, None)])
    assert walk.will_meet(250) and walk.will_meet(50) and not walk.will_meet(None)
    walk.advance(page(0, ["a"], 300))
    walk.advance(page(1, ["x"], 120))
    assert walk.will_meet(250) and walk.will_meet(50)  # below where each part stopped
    assert not walk.will_meet(300) and not walk.will_meet(150)  # read, or on a boundary
    walk.advance(page(1, ["y"], 20, done=True))
    assert not walk.will_meet(50)
