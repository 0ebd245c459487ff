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
from .incremental import AccountProgress
from .parallel import EarlyRequests, PagePlan, alongside, retrieve_all, segmented_pages
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
from .stored import Concurrency, Stored
from .tables import HASH_COLUMN, batches_table, content_hash, errors_table

log = logging.getLogger("batchlens")
# One line per field the tables gained or per field sent with an odd value: the CLI prints
# these as `batchlens: note: ...`.
notes = logging.getLogger("batchlens.notes")

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
) -> Any:
    """Every batch of one account. `full` re-reads every page (the weekly reconcile).

    `requests` (none, errors, all): which files of terminal batches to load request by
    request. `stored`: what the destination already holds (`stored.Stored`; nothing by
    default, which is always correct, only slower). `concurrency`: the requests in flight
    together (`stored.Concurrency`).

    `early`: the requests that need no resource state are sent at once, into `early`,
    while the caller and dlt set up: the planned segments or every page of a `--full` or
    first run, and the retrieves of `stored.open_below`. The caller closes it when the run
    ends (`EarlyRequests`).
    """
    stored = stored or Stored()
    concurrency = concurrency or Concurrency()
    retrieve_concurrency, full_segments = concurrency.retrieves, concurrency.full_segments
    api = BatchesApi(
        base_url,
        api_key,
        provider=provider,
        headers=headers,
        # an incremental run's segments and its retrieves are in flight together
        connections=max(10, retrieve_concurrency + max(full_segments, retrieve_concurrency)),
    )
    files = RequestFiles(
        api,
        account,
        requests_kinds(requests),
        set(stored.known_files),
        stored.stored_files,
        workers=retrieve_concurrency,
    )
    plan = stored.plan
    starts = plan.starts[: (full_segments if full else retrieve_concurrency) - 1]
    # a --full run reads to the bottom, and retrieves after its pages
    plan = PagePlan(starts) if full else plan._replace(starts=starts)
    open_below = list(stored.open_below or ())
    if early is not None:
        if plan.starts:
            pages = segmented_pages(api, plan.starts, on_page=progress, end=plan.end)
            early.start("pages", ("segments", plan.end), pages)
        elif full or stored.nothing_loaded:  # from the top to the bottom, whatever the state
            early.start("pages", ("pages",), api.pages(on_page=progress, read_ahead=False))
        if plan.starts and plan.retrieve_below and open_below and not full:
            retrieved = retrieve_all(api, open_below, retrieve_concurrency)
            early.start("retrieves", frozenset(open_below), retrieved)
    return batches(
        api,
        account=account,
        full=full,
        progress=progress,
        retrieve_concurrency=retrieve_concurrency,
        plan=plan,
        stored_hashes=stored.hashes,
        append=stored.nothing_loaded,
        files=files,
        early=early,
    )


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
EXTRACTIONS_HINTS = dlt.mark.make_hints(
    table_name=EXTRACTIONS_TABLE,
    write_disposition="append",
    columns={
        "started_at": {"data_type": "timestamp"},
        "finished_at": {"data_type": "timestamp"},
    },
)


# One resource feeds three tables from one pass over the pages, each table with its own
# hints (a table variant), so the three land in the same load package or not at all.
@dlt.resource(name=BATCHES_TABLE)
def batches(
    api: BatchesApi,
    account: str = DEFAULT_ACCOUNT,
    full: bool = False,
    progress: Callable[[int, int], None] | None = None,
    files: RequestFiles | None = None,
    retrieve_concurrency: int = 1,
    plan: PagePlan | None = None,
    stored_hashes: dict[str, str] | None = None,
    append: bool = False,
    early: EarlyRequests | None = None,
) -> Iterator[Any]:
    started_at = time.time()
    accounts = dlt.current.resource_state().setdefault("accounts", {})
    previous = accounts.get(account, {})
    run = AccountProgress.from_state(previous, full=full)
    mode = "full" if run.first_run else "incremental"

    def refreshed() -> Iterator[list[dict]]:
        """New pages, then the batches open last time that the pages did not bring.

        Open batches surely below every page are retrieved while the pages are read; a
        batch that both bring anyway (the API's list moved) is passed on once.
        """
        # an incremental run whose state is gone reads everything, as a first run does
        starts, end, below_second = plan or PagePlan([])
        planned = bool(starts) and not run.first_run and end is not None
        # the pages this run reads, as `openai_batches` describes those it started early;
        # one pass stops by the state, unless the run is a first one (it never stops)
        wanted = ("segments", end if planned else None) if starts else ("pages",)
        pages: Iterable[list[dict]] | None = None
        below = run.open_created_before(below_second) if planned and below_second else []
        retrieved: Iterable[tuple[str, dict | None]] | None = None
        if early is not None:
            pages = early.take("pages", wanted if starts or run.first_run else "by the state")
            retrieved = early.take("retrieves", frozenset(below))
        if pages is None and starts:
            pages = segmented_pages(api, starts, on_page=progress, end=end if planned else None)
        elif pages is None:
            pages = api.pages(on_page=progress, stop=run.stop_rule())
        if below:
            if retrieved is None:
                retrieved = retrieve_all(api, below, retrieve_concurrency)
            for item in alongside(pages, retrieved):
                yield from run.not_yet_seen(item)
        else:
            yield from pages
        # asked once every page is observed
        for item in retrieve_all(api, run.open_to_retrieve(), retrieve_concurrency):
            yield from run.not_yet_seen(item)

    tables = _TableWriter(account, _field_keeper(), append)
    chunk: list[dict] = []
    digests: list[str] = []
    stored = stored_hashes or {}
    for batches_seen in refreshed():
        run.observe(batches_seen)
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
    yield from tables.write(chunk, digests)
    # The files after the pages: same load package, so rows, ledger and batches land together.
    if files is not None:
        yield from files.tables()
    downloads = files.downloader if files is not None else None

    # Written with the batches in one load package, so "as of" moves only when they land.
    run_row = {
        "account": account,
        "mode": mode,
        "started_at": started_at,
        "finished_at": time.time(),
        "pages": api.list_requests,
        "list_requests": api.list_requests,
        "retrieve_requests": api.retrieve_requests,
        "http_attempts": api.attempts,
        "batches_loaded": run.batches,
        "status_changes": run.status_changes,
        "still_open": len(run.open_now),
        "file_requests": downloads.requests if downloads else 0,
        "files_downloaded": downloads.downloaded if downloads else 0,
        "request_rows": downloads.rows if downloads else 0,
    }
    yield dlt.mark.with_hints(run_row, EXTRACTIONS_HINTS, create_table_variant=True)
    if run.unknown_statuses:
        # Loaded as they are and kept open (refreshed every run) until a known word comes.
        log.warning(
            "account %s: unknown status %s stored as-is and treated as open",
            account,
            ", ".join(sorted(run.unknown_statuses)),
        )
    accounts[account] = run.next_state(previous)
    _note_fields(tables.keeper, dlt.current.resource_state())


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
