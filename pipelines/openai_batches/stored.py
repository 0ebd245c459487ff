"""What the destination already holds, as the source needs to know it before a run.

The source reads the API only; whoever runs it reads the destination (batchlens' run
planner, `batchlens/run/plan.py`) and hands the answers over in one `Stored`. A plain dlt
user who passes nothing gets a correct run that merges every batch it reads; the answers
only make a run cheaper (fewer pages, fewer retrieves, no merge of unchanged rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .files import FileToFetch
from .parallel import PagePlan


@dataclass(frozen=True)
class Stored:
    """One account's rows in the destination, summed up for its next run.

    `known_files`: file ids in the ledger, never fetched again. `stored_files`: terminal
    batches' files the ledger lacks (a database loaded before files were fetched).
    `plan`: where the pages are read in segments at once (`parallel.PagePlan`), and
    `open_below`: the stored open batches created before the plan's `retrieve_below`,
    retrieved while the pages are read. `hashes`: id -> `content_hash` of the stored
    batches, for a `--full` run that merges only what changed. `nothing_loaded`: no row of
    the account yet, so its rows are appended (no staging copy, no merge). `walk`: the
    kind of walk ("first", "full") the last committed step left unfinished, which this run
    goes on with instead of starting one (the state says so too; this is read before it).
    """

    known_files: frozenset[str] = frozenset()
    stored_files: tuple[FileToFetch, ...] = ()
    plan: PagePlan = field(default_factory=lambda: PagePlan([]))
    open_below: tuple[str, ...] | None = None
    hashes: dict[str, str] | None = None
    nothing_loaded: bool = False
    walk: str | None = None


@dataclass(frozen=True)
class Concurrency:
    """Requests in flight together: `retrieves` open batches retrieved (and files
    downloaded) at once, and at most `full_segments` segments of a `--full` run's list."""

    retrieves: int = 8
    full_segments: int = 4

    def __post_init__(self) -> None:
        for name in ("retrieves", "full_segments"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
