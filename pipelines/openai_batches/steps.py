"""One run in steps: several load packages, each committed with the state it leaves.

A first run or a `--full` run reads the whole list, and at a real API's latency that takes
minutes, a long history's file downloads on top. Committed as one package, an
interruption at minute seven would throw all of it away. So a run can be cut into steps,
each one `pipeline.run` of the source: a step reads pages until it holds `batches` batches
or `seconds` have passed, and, once the pages are all read, downloads files until `files`
were started or `seconds` have passed again; it commits its rows with the state that says
where the next step goes on (`incremental.Walk`). The caller runs the source again with the
same `Steps` while `more` says so:

    steps = Steps()
    while True:
        pipeline.run(openai_batches(..., steps=steps))
        if not steps.more:
            break

A run that ends early (killed, failed) is finished by the next run from the state its
last step committed. Between steps of one run, the pages read ahead and the HTTP session
are kept here, so that cutting a run into steps costs no request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .incremental import Walk
from .parallel import Started


class WalkProgress(NamedTuple):
    """How far a walk has got, for the progress line: `batches` read by every run of it,
    back to `oldest` (a `created_at`); `resumed`: begun by an earlier run."""

    kind: str
    batches: int
    oldest: int | None
    resumed: bool


@dataclass
class Steps:
    """A run's steps: their limits, and what one step hands over to the next.

    `stop`: set it (from a signal handler, say) to end the step at its next page or file,
    committing what it has; `stoppable` says whether the step is where that is possible
    (reading a walk's pages, downloading files, and once it has read all: its commit) or
    must run to its end (the new pages of an incremental run, which commit whole); the
    caller clears it once the step's `pipeline.run` returns. `more`: the last step left
    work for another.
    """

    batches: float = 5_000
    seconds: float = 60.0
    files: float = 1_000
    stop: threading.Event = field(default_factory=threading.Event)
    stoppable: bool = False
    more: bool = False
    started_at: float = field(default_factory=time.time)
    taken: int = 0  # steps run so far
    # kept from one step to the next by the source
    api: Any = None
    files_due: Any = None  # files.RequestFiles
    walked: bool = False  # a step of the run read a walk: the run is a `full` one
    appending: bool = False  # the first step appended, and the next ones may too
    read: int = 0  # batches the steps have read so far
    # the session's and the downloads' counters at the last step's row
    counted: tuple[tuple[int, ...], tuple[int, ...]] = ((0, 0, 0), (0, 0, 0, 0))
    noted: set[str] = field(default_factory=set)  # unknown statuses warned about
    _walk: tuple[Walk, Started, Iterator[Any]] | None = None

    @classmethod
    def one(cls) -> Steps:
        """Everything in one step, one load package: the plain dlt way."""
        return cls(batches=math.inf, seconds=math.inf, files=math.inf)

    @property
    def continuing(self) -> bool:
        """This step goes on with what an earlier step of the same run left."""
        return self.taken > 0

    def keep_reader(self, walk: Walk, reader: Started, pages: Iterator[Any]) -> None:
        """The walk's reader (`pages`, taken from `reader`), with the pages it has read
        ahead, for the next step."""
        self._walk = (walk, reader, pages)

    def take_reader(self, state: dict | None) -> tuple[Walk, Started, Iterator[Any]] | None:
        """The reader kept by the last step, if the committed state is where it left off."""
        kept, self._walk = self._walk, None
        if kept is not None and state is not None and kept[0].to_state() == state:
            return kept
        if kept is not None:
            kept[1].close()
        return None

    def close(self, wait: bool = True) -> None:
        """Stops the kept reader's requests: the run is over, whatever happened; without
        `wait`, not waiting for the ones in flight (the process is ending)."""
        if self._walk is not None:
            self._walk[1].close(wait)
            self._walk = None


class Budget:
    """When a step's phase is over: so many items or seconds, or a stop asked for."""

    def __init__(self, items: float, seconds: float, stop: threading.Event) -> None:
        self.items = items
        self.deadline = time.monotonic() + seconds
        self.stop = stop
        self.used = 0

    def spend(self, items: int) -> bool:
        """Counts `items`; True once the phase should end."""
        self.used += items
        return self.used >= self.items or time.monotonic() >= self.deadline or self.stop.is_set()
