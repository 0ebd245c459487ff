"""The incremental bookkeeping, as pure functions over the resource state.

dlt's `incremental("created_at")` would stop at the previous newest batch and never come
back for older ones that are still open, and batches sit in `finalizing` for days. So the
state keeps, per account, the newest `created_at` seen and every batch that was not
terminal at the last run; the next run reads new pages down to that second (inclusive:
batches created in the same second must not be lost) and retrieves the open ones it did
not meet on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

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
