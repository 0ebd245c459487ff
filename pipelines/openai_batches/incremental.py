"""The incremental bookkeeping, as pure functions over the resource state.

dlt's `incremental("created_at")` would stop at the previous newest batch and never come
back for older ones that are still open, and batches sit in `finalizing` for days. So the
state keeps, per account, the newest `created_at` seen and every batch that was not
terminal at the last run; the next run reads new pages down to that second (inclusive:
batches created in the same second must not be lost) and retrieves the open ones it did
not meet on the way.

A read of the whole list (a first run, `--full`) is a `Walk`: it commits in steps, and
the state keeps the parts of the list it has not read yet, so a run stopped halfway is
finished by the next one from where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .providers import map_status
from .settings import TERMINAL_STATUSES
from .tables import to_seconds


@dataclass
class AccountProgress:
    """What one account's run has seen so far; becomes the next state when the run commits."""

    newest_created_at: int | None
    open_before: dict[str, list]  # id -> [created_at, status] at the previous run
    open_now: dict[str, list] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # of the `open_before` ids only
    max_created_at: int | None = None
    status_changes: int = 0
    batches: int = 0
    unknown_statuses: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # Batches open before that this run does not meet stay open: a step that reads one
        # part of a walk refreshes only the batches on its pages.
        self.open_now = {**self.open_before, **self.open_now}

    @classmethod
    def from_state(cls, state: dict, full: bool) -> AccountProgress:
        newest = None if full else state.get("newest_created_at")
        return cls(newest_created_at=newest, open_before=dict(state.get("open", {})))

    @property
    def first_run(self) -> bool:
        return self.newest_created_at is None

    def observe(self, batches: Iterable[dict]) -> None:
        for batch in batches:
            batch_id = batch["id"]
            self.batches += 1
            if batch_id in self.open_before:  # all a run needs; every id would grow with history
                self.seen.add(batch_id)
            created_at = to_seconds(batch.get("created_at"))
            if created_at is not None and (
                self.max_created_at is None or created_at > self.max_created_at
            ):
                self.max_created_at = created_at
            status, known = map_status(batch.get("status"))
            if not known:
                self.unknown_statuses.add(str(status))
            before = self.open_before.get(batch_id)
            if before is not None and before[1] != status:
                self.status_changes += 1
            if status in TERMINAL_STATUSES:
                self.open_now.pop(batch_id, None)
            else:
                self.open_now[batch_id] = [created_at, status]

    def reached_known_history(self, page: Sequence[dict]) -> bool:
        """True once a page holds a batch strictly older than the previous newest one."""
        if self.newest_created_at is None:
            return False
        return any(to_seconds(b["created_at"]) < self.newest_created_at for b in page)

    def stop_rule(self) -> Callable[[Sequence[dict]], bool]:
        """When to stop reading pages: past the known history, and no longer worth it.

        Below the previous newest second, a page is still cheaper than retrieving the open
        batches it holds one by one, as long as it is likely to hold two or more: open
        batches created within one more page span below this page. Asked in page order
        (by the thread that reads ahead), so it tracks what the pages brought itself.
        """
        remaining = {i: c for i, (c, _) in self.open_before.items() if isinstance(c, int)}

        def stop(page: Sequence[dict]) -> bool:
            for batch in page:
                remaining.pop(batch["id"], None)
            if not self.reached_known_history(page):
                return False
            created = [to_seconds(b["created_at"]) or 0 for b in page]
            oldest, span = min(created), max(max(created) - min(created), 1)
            likely = sum(1 for c in remaining.values() if oldest - span <= c < oldest)
            return likely < 2

        return stop

    def open_to_retrieve(self) -> list[str]:
        """Batches open at the previous run that this run has not refreshed or asked for."""
        return [batch_id for batch_id in self.open_before if batch_id not in self.seen]

    def open_created_before(self, second: int) -> list[str]:
        """Batches open at the previous run created before `second`, oldest last."""
        return [
            batch_id
            for batch_id, (created_at, _) in self.open_before.items()
            if isinstance(created_at, int) and created_at < second
        ]

    def not_yet_seen(self, item: list[dict] | tuple[str, dict | None]) -> Iterator[list[dict]]:
        """A page, or a retrieve's (id, batch or None), without what the run already has.

        A retrieve's None is a batch the API no longer knows (404): forgotten.
        """
        if isinstance(item, tuple):
            batch_id, batch = item
            if batch_id in self.seen:
                return
            if batch is None:
                self.forget(batch_id)
                return
            item = [batch]
        fresh = [batch for batch in item if batch["id"] not in self.seen]
        if fresh:
            yield fresh

    def forget(self, batch_id: str) -> None:
        """The API no longer knows a batch (404): stop asking for it every run."""
        self.open_now.pop(batch_id, None)
        self.seen.add(batch_id)  # asked: not asked again this run

    def next_state(self, previous: dict) -> dict:
        """The state to commit with this run's data; never moves the newest second back."""
        known = [c for c in (previous.get("newest_created_at"), self.max_created_at) if c]
        return {"newest_created_at": max(known) if known else None, "open": dict(self.open_now)}


Mark = tuple[str, int]  # (id, created_at) of a batch: where a part of the list starts or stops


@dataclass(frozen=True)
class Part:
    """A stretch of the list still to read: the batches after `after` (from the top when
    None) down to `stop` (the first page that holds it, or anything created before it, is
    the last one; the bottom when None)."""

    after: Mark | None
    stop: Mark | None

    def to_state(self) -> list:
        return [*(self.after or (None, None)), *(self.stop or (None, None))]

    @classmethod
    def from_state(cls, value: Sequence) -> Part:
        after_id, after_at, stop_id, stop_at = value
        return cls(
            (str(after_id), int(after_at)) if after_id is not None else None,
            (str(stop_id), int(stop_at)) if stop_id is not None else None,
        )


class PartPage(NamedTuple):
    """One page a part read (`parallel.read_parts`): where the part goes on from, and
    `through`, the index of the last part it reads for (the parts below it that were dead,
    their start deleted or ignored by the API, are read by this one)."""

    index: int
    batches: list[dict]  # the page's batches no other part brought before
    after: Mark | None  # the page's last batch; None for a part that found nothing
    through: int
    done: bool


@dataclass
class Walk:
    """A read of the whole list from the top, in parts read at once, over one run or more.

    `kind`: "first" (the account's first run) or "full" (`--full`). `unmet`: the batches
    open when it began that it has not met yet; retrieved when it ends, as the one-pass
    read retrieves the open batches the list no longer shows. `batches`: read so far, by
    every run of it; `oldest`: the `created_at` of the oldest batch it reached.
    """

    kind: str
    parts: list[Part]
    unmet: set[str] = field(default_factory=set)
    batches: int = 0
    oldest: int | None = None
    resumed: bool = False
    _after: dict[int, Mark | None] = field(default_factory=dict)  # index -> where it is
    _through: dict[int, int] = field(default_factory=dict)
    _done: set[int] = field(default_factory=set)

    @classmethod
    def from_state(cls, state: dict | None) -> Walk | None:
        if not state:
            return None
        return cls(
            kind=str(state["kind"]),
            parts=[Part.from_state(part) for part in state["parts"]],
            unmet=set(state.get("unmet", ())),
            batches=int(state.get("batches", 0)),
            oldest=state.get("oldest"),
            resumed=True,
        )

    def to_state(self) -> dict:
        return {
            "kind": self.kind,
            "parts": [part.to_state() for part in self.remaining()],
            "unmet": sorted(self.unmet),
            "batches": self.batches,
            "oldest": self.oldest,
        }

    @property
    def done(self) -> bool:
        return not self.remaining()

    @property
    def reads_the_top(self) -> bool:
        """A part still reads from the top of the list: it brings what is new there too."""
        return any(part.after is None for part in self.remaining())

    def will_meet(self, created_at: object) -> bool:
        """A batch created then is surely in a stretch still to read: strictly between a
        part's last batch read (the top, for a part that reads from there) and its stop."""
        if not isinstance(created_at, int):
            return False
        return any(
            (part.after is None or created_at < part.after[1])
            and (part.stop is None or created_at > part.stop[1])
            for part in self.remaining()
        )

    def advance(self, page: PartPage) -> None:
        """Takes in one page of part `page.index` (committed with the step that read it)."""
        self._through[page.index] = page.through
        if page.after is not None:
            self._after[page.index] = page.after
        if page.done:
            self._done.add(page.index)
        self.batches += len(page.batches)
        for batch in page.batches:
            created = to_seconds(batch.get("created_at"))
            if created is not None and (self.oldest is None or created < self.oldest):
                self.oldest = created

    def finish(self) -> None:
        """Every part has read to its end (its reader is exhausted)."""
        self._done.update(range(len(self.parts)))

    def remaining(self) -> list[Part]:
        """The parts still to read: each from its last page read, to its stop (or to the
        stop of the dead parts it reads for); parts read to the end, or read for, left out."""
        left: list[Part] = []
        covered = -1
        for index, part in enumerate(self.parts):
            if index <= covered:
                continue
            through = self._through.get(index, index)
            covered = max(covered, through)
            if index in self._done:
                continue
            after = self._after.get(index, part.after)
            left.append(Part(after, self.parts[through].stop))
        return left
