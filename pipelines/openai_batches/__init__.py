"""dlt source for the OpenAI Batch API: every batch, loaded incrementally, merged on id."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema

from .api_client import BatchesApi
from .extra_fields import UNEXPECTED_COLUMN, FieldKeeper
from .files import DEFAULT_REQUESTS_MODE, RequestFiles, requests_kinds
from .incremental import AccountProgress, Part, Walk
from .parallel import (
    EarlyRequests,
    PagePlan,
    Started,
    alongside,
    read_parts,
    retrieve_all,
    segmented_pages,
)
from .settings import (
    BATCHES_TABLE,
    DEFAULT_ACCOUNT,
    DEFAULT_BASE_URL,
    ERRORS_TABLE,
    EXTRACTIONS_TABLE,
    REQUEST_COUNT_FIELDS,
    TIMESTAMP_FIELDS,
    USAGE_FIELDS,
)
from .steps import Budget, Steps, WalkProgress
from .stored import Concurrency, Stored
from .tables import HASH_COLUMN, batches_table, content_hash, errors_table

log = logging.getLogger("batchlens")
# One line per field the tables gained or per field sent with an odd value: the CLI prints
# these as `batchlens: note: ...`.
notes = logging.getLogger("batchlens.notes")

# Pages a walk reads ahead of its steps: enough to keep requests going while a step
# commits (a few tenths of a second), few enough that a killed run loses little it had read.
WALK_AHEAD = 8

# Pages are yielded to dlt in chunks: dlt's cost per item is milliseconds, its cost per row
# microseconds. 5,000 rows keep memory flat (a few MB) however long the history is.
CHUNK_ROWS = 5_000

# Hinted so that every column the SQL models read exists with its type from the first
# load, even while all its values are null (dlt creates no column for nulls only).
BATCH_COLUMNS: dict[str, TColumnSchema] = {
    **{name: {"data_type": "timestamp", "nullable": True} for name in TIMESTAMP_FIELDS},
    **{
        name: {"data_type": "text", "nullable": True}
        for name in ("endpoint", "model", "status", "status_raw", "completion_window")
    },
    **{f"request_counts__{n}": {"data_type": "bigint"} for n in REQUEST_COUNT_FIELDS},
    **{"usage__" + "__".join(p): {"data_type": "bigint"} for p in USAGE_FIELDS},
    # user labels stay one JSON value instead of a column per key
    "metadata": {"data_type": "json", "nullable": True},
    # values of a type their column cannot hold, as sent, by field path (extra_fields.py)
    UNEXPECTED_COLUMN: {"data_type": "json", "nullable": True},
    HASH_COLUMN: {"data_type": "text", "nullable": True},
}


@dlt.source(name="openai_batches", section="openai_batches")
def openai_batches(
    api_key: str | None = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    provider: str | None = None,
    headers: dict[str, str] | None = None,
    account: str = DEFAULT_ACCOUNT,
    full: bool = False,
    requests: str = DEFAULT_REQUESTS_MODE,
    stored: Stored | None = None,
    concurrency: Concurrency | None = None,
    progress: Any = None,
    early: EarlyRequests | None = None,
    steps: Steps | None = None,
) -> Any:
    """Every batch of one account. `full` re-reads every page (the weekly reconcile).

    `requests` (none, errors, all): which files of terminal batches to load request by
    request. `stored`: what the destination already holds (`stored.Stored`; nothing by
    default, which is always correct, only slower). `concurrency`: the requests in flight
    together (`stored.Concurrency`). `progress(pages, batches, walk=None)`: called after
    each page; `walk` (`steps.WalkProgress`) while the whole list is read.

    `steps`: the run in several load packages, each committed with its state (see
    `steps.Steps`); pass the same object to the source of each step. Without it, the run is
    one package.

    `early`: the requests that need no resource state are sent at once, into `early`,
    while the caller and dlt set up: the planned segments or every part of a `--full` or
    first run, and the retrieves of `stored.open_below`. The caller closes it when the run
    ends (`EarlyRequests`).
    """
    stored = stored or Stored()
    concurrency = concurrency or Concurrency()
    steps = steps or Steps.one()
    retrieve_concurrency, full_segments = concurrency.retrieves, concurrency.full_segments
    if steps.api is None:  # the first step: the session and the files due last the run
        steps.api = BatchesApi(
            base_url,
            api_key,
            provider=provider,
            headers=headers,
            # an incremental run's segments and its retrieves are in flight together
            connections=max(10, retrieve_concurrency + max(full_segments, retrieve_concurrency)),
        )
        steps.files_due = RequestFiles(
            steps.api,
            account,
            requests_kinds(requests),
            set(stored.known_files),
            stored.stored_files,
            workers=retrieve_concurrency,
        )
    api = steps.api
    # A walk left unfinished by an earlier run goes on, whatever this run was asked:
    # its pages are planned as an incremental run's are.
    new_walk = full and stored.walk is None
    plan = stored.plan
    starts = plan.starts[: (full_segments if new_walk else retrieve_concurrency) - 1]
    parts = _walk_parts(starts if new_walk else [])
    plan = PagePlan([]) if new_walk else plan._replace(starts=starts)
    open_below = list(stored.open_below or ())
    if early is not None and not steps.continuing:
        if (new_walk or stored.nothing_loaded) and stored.walk is None:
            early.start("walk", tuple(parts), read_parts(api, parts), depth=WALK_AHEAD)
        elif plan.starts:
            pages = segmented_pages(api, plan.starts, end=plan.end)
            early.start("pages", ("segments", plan.end), pages)
        if plan.starts and plan.retrieve_below and open_below:
            retrieved = retrieve_all(api, open_below, retrieve_concurrency)
            early.start("retrieves", frozenset(open_below), retrieved)
    return batches(
        api,
        account=account,
        full=full,
        progress=progress,
        retrieve_concurrency=retrieve_concurrency,
        plan=plan,
        walk_parts=parts,
        stored_hashes=stored.hashes,
        append=stored.nothing_loaded,
        files=steps.files_due,
        early=early,
        steps=steps,
    )


def _walk_parts(starts: list[tuple[str, int]]) -> list[Part]:
    """The parts a new walk reads at once: from the top to the first start, from each start
    to the next, from the last one to the bottom (one part without starts)."""
    marks: list[tuple[str, int] | None] = [None, *starts, None]
    return [Part(marks[i], marks[i + 1]) for i in range(len(marks) - 1)]


# Merge, not append: a batch is a mutable object that changes status for days, and the
# table must hold one row per batch whatever happens. The key includes the account
# because several accounts load into one table.
BATCHES_HINTS = dlt.mark.make_hints(
    table_name=BATCHES_TABLE,
    write_disposition="merge",
    primary_key=("account", "id"),
    columns=BATCH_COLUMNS,
)
APPENDED = {"write_disposition": "append"}
# Errors of a batch are replaced whenever the batch is loaded again (the merge key).
ERRORS_HINTS = dlt.mark.make_hints(
    table_name=ERRORS_TABLE,
    write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    primary_key=("account", "batch_id", "position"),
    merge_key=("account", "batch_id"),
    columns={UNEXPECTED_COLUMN: {"data_type": "json", "nullable": True}},
)
# One row per account and run, appended: the history of extractions and the "as of".
# A run in several steps writes a row for each; `started_at` is the run's start in each.
EXTRACTIONS_HINTS = dlt.mark.make_hints(
    table_name=EXTRACTIONS_TABLE,
    write_disposition="append",
    columns={
        "started_at": {"data_type": "timestamp"},
        "finished_at": {"data_type": "timestamp"},
        "files_failed": {"data_type": "bigint"},
        # the walk (a first run or --full) the step left for the next one, if any
        "unfinished_walk": {"data_type": "text", "nullable": True},
    },
)


# One resource feeds three tables from one pass over the pages, each table with its own
# hints (a table variant), so the three land in the same load package or not at all.
@dlt.resource(name=BATCHES_TABLE)
def batches(
    api: BatchesApi,
    account: str = DEFAULT_ACCOUNT,
    full: bool = False,
    progress: Callable[..., None] | None = None,
    files: RequestFiles | None = None,
    retrieve_concurrency: int = 1,
    plan: PagePlan | None = None,
    walk_parts: list[Part] | None = None,
    stored_hashes: dict[str, str] | None = None,
    append: bool = False,
    early: EarlyRequests | None = None,
    steps: Steps | None = None,
) -> Iterator[Any]:
    """One step of a run: its pages, its retrieves, its files, its row in `extractions`,
    and the state the next step or run goes on from (`steps.Steps`)."""
    steps = steps or Steps.one()
    accounts = dlt.current.resource_state().setdefault("accounts", {})
    previous = accounts.get(account, {})
    kept = steps.take_reader(previous.get("walk")) if steps.continuing else None
    walk = kept[0] if kept is not None else Walk.from_state(previous.get("walk"))
    new_walk = (
        walk is None
        and not steps.continuing
        and (full or previous.get("newest_created_at") is None)
    )
    if new_walk:  # a first run or --full: the whole list, from the top, in parts
        kind = "full" if full else "first"
        walk = Walk(
            kind, list(walk_parts or [Part(None, None)]), unmet=set(previous.get("open", {}))
        )
    run = AccountProgress.from_state(previous, full=new_walk)
    steps.walked = steps.walked or walk is not None
    if walk is not None and walk.resumed and not steps.continuing:
        notes.warning("%s", _resuming(account, walk))

    def new_pages() -> Iterator[list[dict]]:
        """New pages, then the batches open last time that the pages did not bring.

        Open batches surely below every page are retrieved while the pages are read; a
        batch that both bring anyway (the API's list moved) is passed on once.
        """
        starts, end, below_second = plan or PagePlan([])
        planned = bool(starts) and end is not None
        # the pages this run reads, as `openai_batches` describes those it started early
        wanted = ("segments", end if planned else None) if starts else "by the state"
        pages: Iterable[list[dict]] | None = None
        below = run.open_created_before(below_second) if planned and below_second else []
        retrieved: Iterable[tuple[str, dict | None]] | None = None
        if early is not None:
            pages = early.take("pages", wanted)
            retrieved = early.take("retrieves", frozenset(below))
        if pages is None and starts:
            pages = segmented_pages(api, starts, end=end if planned else None)
        elif pages is None:
            pages = api.pages(stop=run.stop_rule())
        if below:
            if retrieved is None:
                retrieved = retrieve_all(api, below, retrieve_concurrency)
            for item in alongside(pages, retrieved):
                yield from run.not_yet_seen(item)
        else:
            yield from pages

    def retrieved(batch_ids: list[str]) -> Iterator[list[dict]]:
        for item in retrieve_all(api, batch_ids, retrieve_concurrency):
            yield from run.not_yet_seen(item)

    def walk_pages(walk: Walk) -> Iterator[list[dict]]:
        """The walk's parts, until the step holds `steps.batches` or its time is up."""
        if kept is not None:
            reader, pages = kept[1], kept[2]
        else:
            taken = early.take("walk", tuple(walk.parts)) if new_walk and early else None
            reader = taken or Started(read_parts(api, walk.parts), WALK_AHEAD, "batchlens-walk")
            pages = iter(reader)
        budget = Budget(steps.batches, steps.seconds, steps.stop)
        steps.stoppable = True  # any page is a place to stop at
        try:
            for page in pages:
                walk.advance(page)
                if page.batches:
                    yield page.batches
                if budget.spend(len(page.batches)) and not walk.done:
                    steps.keep_reader(walk, reader, pages)
                    return
            walk.finish()
        finally:
            steps.stoppable = False
        # the batches open when the walk began that its pages did not bring (deleted since)
        walk.unmet -= run.seen
        yield from retrieved(sorted(walk.unmet))

    def refreshed() -> Iterator[list[dict]]:
        if not steps.continuing and not new_walk:
            if walk is None or not walk.reads_the_top:  # else a part of the walk reads it
                yield from new_pages()
            # asked once every new page is observed; a part of the walk refreshes those it
            # will meet
            due = run.open_to_retrieve()
            if walk is not None:
                due = [i for i in due if not walk.will_meet(run.open_before[i][0])]
            yield from retrieved(due)
        if walk is not None:
            yield from walk_pages(walk)

    tables = _TableWriter(
        account, _field_keeper(), append if not steps.continuing else steps.appending
    )
    chunk: list[dict] = []
    digests: list[str] = []
    stored = stored_hashes or {}
    for batches_seen in refreshed():
        run.observe(batches_seen)
        steps.read += len(batches_seen)
        if files is not None:
            files.note(batches_seen)
        for batch in batches_seen:
            digest = content_hash(batch)
            if stored.get(batch["id"]) != digest:  # stored as sent already: nothing to merge
                chunk.append(batch)
                digests.append(digest)
        if len(chunk) >= CHUNK_ROWS:
            yield from tables.write(chunk, digests)
            chunk, digests = [], []
        if progress is not None:
            _report(progress, api.list_requests, steps.read, walk)
    yield from tables.write(chunk, digests)
    walking = walk is not None and not walk.done
    # The files once every page is in, in the same package as the last pages: a file's
    # rows, its ledger row and its batch land together.
    if files is not None and not walking:
        steps.stoppable = True  # a file is a place to stop at: the complete ones commit
        try:
            yield from files.tables(steps.files, steps.seconds, steps.stop)
        finally:
            steps.stoppable = False
    steps.more = walking or bool(files is not None and files.pending)
    if not steps.continuing:
        # appending is safe while only this run's own walk, one part, has loaded rows
        steps.appending = append and new_walk and walk is not None and len(walk.parts) == 1
    steps.taken += 1

    # Written with the batches in one load package, so "as of" moves only when they land.
    yield dlt.mark.with_hints(
        _run_row(account, steps, run, api, files, walk if walking else None),
        EXTRACTIONS_HINTS,
        create_table_variant=True,
    )
    unknown = run.unknown_statuses - steps.noted
    if unknown:
        # Loaded as they are and kept open (refreshed every run) until a known word comes.
        log.warning(
            "account %s: unknown status %s stored as-is and treated as open",
            account,
            ", ".join(sorted(unknown)),
        )
        steps.noted |= unknown
    state = run.next_state(previous)
    if walking:
        assert walk is not None
        walk.unmet -= run.seen
        state["walk"] = walk.to_state()
    accounts[account] = state
    _note_fields(tables.keeper, dlt.current.resource_state())
    # All read: what is left of the step is its commit, which a stop lets finish.
    steps.stoppable = True


def _run_row(
    account: str,
    steps: Steps,
    run: AccountProgress,
    api: BatchesApi,
    files: RequestFiles | None,
    unfinished: Walk | None,
) -> dict[str, Any]:
    """The step's row in `extractions`: the requests and files since the last step's row
    (the first step's include the early requests), and the run's start."""
    counts = api.counts(), files.downloader.counts() if files is not None else (0, 0, 0, 0)
    lists, retrieves, attempts = (n - b for n, b in zip(counts[0], steps.counted[0], strict=True))
    file_requests, downloaded, rows, failed = (
        n - b for n, b in zip(counts[1], steps.counted[1], strict=True)
    )
    steps.counted = counts
    return {
        "account": account,
        "mode": "full" if steps.walked else "incremental",
        "started_at": steps.started_at,
        "finished_at": time.time(),
        "pages": lists,
        "list_requests": lists,
        "retrieve_requests": retrieves,
        "http_attempts": attempts,
        "batches_loaded": run.batches,
        "status_changes": run.status_changes,
        "still_open": len(run.open_now),
        "file_requests": file_requests,
        "files_downloaded": downloaded,
        "request_rows": rows,
        "files_failed": failed,
        "unfinished_walk": unfinished.kind if unfinished is not None else None,
    }


def _report(progress: Callable[..., None], pages: int, batches: int, walk: Walk | None) -> None:
    if walk is None:
        progress(pages, batches)
    else:
        # parts read at once reach the bottom early: "back to" means something for one part
        oldest = walk.oldest if len(walk.parts) == 1 else None
        progress(pages, batches, walk=WalkProgress(walk.kind, walk.batches, oldest, walk.resumed))


def _resuming(account: str, walk: Walk) -> str:
    what = "the first run" if walk.kind == "first" else "the --full run"
    back = (
        f", back to {_day(walk.oldest)}" if walk.oldest is not None and len(walk.parts) == 1 else ""
    )
    named = f"account {account}: " if account != DEFAULT_ACCOUNT else ""
    return f"{named}resuming {what} where it stopped ({walk.batches} batches read{back})"


def _day(created_at: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(created_at))


def _field_keeper() -> FieldKeeper:
    """Typed by the columns the tables already have, so a column never changes type."""
    try:
        schema = dlt.current.source_schema()
    except Exception:  # the resource iterated outside a pipeline (tests)
        return FieldKeeper()
    existing = {
        table: {
            name: column["data_type"]
            for name, column in schema.get_table_columns(table).items()
            if column.get("data_type")
        }
        for table in (BATCHES_TABLE, ERRORS_TABLE)
        if table in schema.tables
    }
    return FieldKeeper(existing, schema.naming)


def _note_fields(keeper: FieldKeeper, state: dict[str, Any]) -> None:
    """Each new column once (the next run finds it in the schema), and each field with odd
    values once (remembered in the state, which commits with the data)."""
    noted = state.get("odd_fields_noted", [])
    for line in keeper.notes(noted):
        notes.warning(line)
    if keeper.unexpected - set(noted):
        state["odd_fields_noted"] = sorted(keeper.unexpected.union(noted))


class _TableWriter:
    """Arrow tables for dlt, each table's hints sent once (dlt validates them on every mark)."""

    def __init__(self, account: str, keeper: FieldKeeper, append: bool = False) -> None:
        self.account = account
        self.keeper = keeper
        self.append = append
        self.hinted: set[str] = set()

    def write(self, batches: list[dict], digests: list[str]) -> Iterator[Any]:
        if batches or not self.hinted:
            table = batches_table(batches, self.account, self.keeper)
            table = table.append_column(HASH_COLUMN, pa.array(digests, pa.string()))
            yield self._mark(table, BATCHES_HINTS)
        errors = errors_table(batches, self.account, self.keeper)
        # The first write sends the errors table even when empty: it creates the table, so
        # the SQL models can read it before any batch has failed.
        if errors.num_rows or ERRORS_TABLE not in self.hinted:
            yield self._mark(errors, ERRORS_HINTS)

    def _mark(self, table: Any, hints: Any) -> Any:
        name = hints["table_name"]
        if name in self.hinted:
            return dlt.mark.with_table_name(table, name)
        self.hinted.add(name)
        if self.append:
            hints = {**hints, **APPENDED}
        return dlt.mark.with_hints(table, hints, create_table_variant=True)
