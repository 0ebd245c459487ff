"""One extraction run, as cron needs it: locked, atomic, with a summary.

Each database file gets its own dlt working folder beside it (`<db>.batchlens/`), so the
incremental state belongs to the file: two databases never share it, and a copied file
brings its state along in `_dlt_pipeline_state`, which dlt restores from. A server
destination gets a working folder per server; its state lives in the server too.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import duckdb

from batchlens.config import Account, Parallelism, parallelism
from batchlens.errors import BatchlensError, UsageError, classify
from batchlens.storage.dialects import DUCKDB, rows, with_literals
from batchlens.storage.target import Target
from batchlens.views.build import build_models, check_models
from batchlens.views.prices import Overrides
from openai_batches import openai_batches
from openai_batches.files import (
    DEFAULT_REQUESTS_MODE,
    ledger_in_destination,
    requests_kinds,
)
from openai_batches.parallel import EarlyRequests, PagePlan, incremental_segments
from openai_batches.settings import (
    BATCHES_TABLE,
    DATASET_NAME,
    ERRORS_TABLE,
    EXTRACTIONS_TABLE,
    TERMINAL_STATUSES,
)
from openai_batches.tables import HASH_COLUMN

PIPELINE_NAME = "batchlens"

# Loaded packages would otherwise keep every parquet file ever extracted, run after run.
os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")
os.environ.setdefault("LOAD__TRUNCATE_STAGING_DATASET", "true")


class _KnownArrowHintWarning(logging.Filter):
    """`metadata` is JSON text in Arrow and `json` in the schema, on purpose, every page."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when merging arrow schema with dlt schema" not in record.getMessage()


logging.getLogger("dlt").addFilter(_KnownArrowHintWarning())


@dataclass
class Summary:
    pages: int = 0
    requests: int = 0
    retries: int = 0
    new: int = 0
    updated: int = 0
    still_open: int = 0
    files: int = 0
    request_rows: int = 0
    seconds: float = 0.0

    def line(self, db: Path | str, account: str | None = None) -> str:
        named = f"account={account} " if account else ""
        return (
            f"batchlens extract: {named}pages={self.pages} requests={self.requests} "
            f"new={self.new} updated={self.updated} still_open={self.still_open} "
            f"files={self.files} request_rows={self.request_rows} retries={self.retries} "
            f"seconds={self.seconds:.2f} db={db}"
        )


def state_dir(db: Path) -> Path:
    return Target("duckdb", label=str(db), db=db).state_dir()


def open_pipeline(target: Target, connection: Any) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=target.dlt_destination(connection),
        dataset_name=DATASET_NAME,
        pipelines_dir=str(target.state_dir() / "pipelines"),
    )


def drop_handed_over_packages(working_dir: Path) -> None:
    """Finishes a normalize-to-load handover that a kill interrupted.

    dlt renames a normalized package into `load/normalized` and then deletes its extracted
    copy; killed in between, both remain, and dlt's next normalize fails on the half-deleted
    copy. The package under `load/` is complete, so the extracted leftover can go.
    """
    extracted = working_dir / "normalize" / "extracted"
    if not extracted.is_dir():
        return
    handed_over = {
        package.name
        for stage in ("normalized", "loaded")
        for package in (working_dir / "load" / stage).glob("*")
    }
    for package in extracted.iterdir():
        if package.name in handed_over:
            shutil.rmtree(package)


def merge_extracted_packages(pipeline: dlt.Pipeline) -> None:
    """Makes a package left in `normalize/extracted` merge its batches, as it was meant to.

    dlt normalizes a leftover package with the pipeline's stored schema, not the one the
    package was extracted with (it warns "Storage schema was used"). After an account's
    first load, which appends, the stored schema says append; a run killed right after
    its extraction left a package meant to merge, and appending it stored every batch it
    refreshed twice. Merging is right for any package, a first load's included (its rows
    are unique): only slower.
    """
    extracted = Path(pipeline.working_dir) / "normalize" / "extracted"
    if not pipeline.default_schema_name or not extracted.is_dir() or not any(extracted.iterdir()):
        return
    tables = pipeline.default_schema.tables
    for name, strategy in ((BATCHES_TABLE, None), (ERRORS_TABLE, "delete-insert")):
        if name in tables and tables[name].get("write_disposition") != "merge":
            tables[name]["write_disposition"] = "merge"
            if strategy:
                tables[name]["x-merge-strategy"] = strategy  # type: ignore[typeddict-unknown-key]


# The merge of a run's rows into the table is DuckDB's only sizeable work: one thread
# holds less memory at no cost in wall time, which the API's latency sets. Its buffer pool
# keeps DuckDB's default (80 % of RAM): a cap is a hard limit for the merge, which needs
# roughly 1 KB per merged row (64 MB fails on 100,000 batches), so it is the user's choice,
# `[batchlens] duckdb_memory_limit`. Spills go to `tmp` in the state folder.
DUCKDB_SETTINGS = {"threads": "1", "memory_limit": None}


def _duckdb_settings(target: Target) -> dict[str, str]:
    settings = {
        "preserve_insertion_order": "false",
        "temp_directory": str(target.state_dir() / "tmp"),
    }
    for name, default in DUCKDB_SETTINGS.items():
        value = dlt.config.get(f"batchlens.duckdb_{name}") or default
        if value is not None:
            settings[name] = str(value)
    return settings


def open_database(target: Target) -> Any:
    """Fails fast, before extracting, when another process has the file open."""
    settings = _duckdb_settings(target) if target.kind != "postgres" else {}
    with contextlib.closing(duckdb.connect()) as scratch:  # a bad value creates no file
        _apply(scratch, settings)
    try:
        connection = target.connect()
    except duckdb.Error as exc:
        known = classify(exc)
        if known:
            raise
        message = str(exc).splitlines()[0]
        raise UsageError(f"cannot open the database {target.label}: {message}") from None
    _apply(connection, settings)
    return connection


def _apply(connection: duckdb.DuckDBPyConnection, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        try:
            connection.execute(f"set {name} = '{value.replace(chr(39), chr(39) * 2)}'")
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            raise UsageError(f"[batchlens] duckdb_{name} = {value!r}: {message}") from None


@dataclass
class _Reader:
    """Queries on the run's own connection: a dlt SQL client costs a config resolution each.

    On DuckDB the parameters are written into the SQL (`with_literals`): binding the first
    one imports pandas, which is better done while the run's first requests are in flight.
    """

    connection: Any
    dialect: str

    def __call__(self, sql: str, **params: Any) -> list[tuple]:
        if self.dialect == DUCKDB and params:
            sql, params = with_literals(sql, params), {}
        try:
            return list(rows(self.connection, self.dialect, sql, params)[1])
        finally:
            if self.dialect != DUCKDB and not self.connection.autocommit:
                self.connection.rollback()  # holds no lock while dlt loads

    def tolerant(self, sql: str, **params: Any) -> list[tuple] | None:
        """None when the query fails: no table yet, on the first run."""
        try:
            return self(sql, **params)
        except Exception:
            return None


def _row_counts(read: _Reader) -> dict[str, int]:
    found = read.tolerant(
        f"select account, count(*) from {DATASET_NAME}.{BATCHES_TABLE} group by 1"
    )
    return {account: count for account, count in found or []}


def _nothing_loaded(read: _Reader, account: str) -> bool:
    """No row of `account` is stored: its rows can be appended, there is nothing to merge.

    Asked strictly (a failing query is an error, not "nothing"): appending onto rows that
    exist would store a batch twice.
    """
    ((tables,),) = read(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = $schema and table_name = $table",
        schema=DATASET_NAME,
        table=BATCHES_TABLE,
    )
    if not tables:
        return True
    table = f"{DATASET_NAME}.{BATCHES_TABLE}"
    ((rows_stored,),) = read(
        f"select count(*) from {table} where account = $account", account=account
    )
    return rows_stored == 0


def _run_rows(read: _Reader, load_ids: list[str]) -> list[tuple]:
    if not load_ids:
        return []
    marks = ", ".join(f"$id{i}" for i in range(len(load_ids)))
    return read(
        "select list_requests, retrieve_requests, http_attempts, status_changes, still_open, "
        "file_requests, files_downloaded, request_rows "
        f"from {DATASET_NAME}.{EXTRACTIONS_TABLE} where _dlt_load_id in ({marks})",
        **{f"id{i}": load_id for i, load_id in enumerate(load_ids)},
    )


# Providers whose list cursor is a batch id, so a segment can start at any loaded batch.
# The others (page tokens, everything in one page) read a `--full` run in one pass.
SEGMENTED_PROVIDERS = (None, "openai", "azure-openai")
# Each boundary between segments may cost one page more than one pass: segments are only
# worth it from ten pages each.
SEGMENT_MIN_BATCHES = 1_000


def _segment_starts(read: _Reader, account: str, segments: int) -> list[tuple[str, int]]:
    """Loaded batches spaced evenly through the account's history, newest first.

    Empty on a first run (nothing to start from) and for a short history: the list is then
    read in one pass.
    """
    table = f"{DATASET_NAME}.{BATCHES_TABLE}"
    counted = read.tolerant(
        f"select count(*) from {table} where account = $account", account=account
    )
    total = counted[0][0] if counted else 0
    segments = min(segments, total // SEGMENT_MIN_BATCHES)
    if segments < 2:
        return []
    positions = {f"n{i}": total * i // segments + 1 for i in range(1, segments)}
    found = read(
        "select id, cast(extract(epoch from created_at) as bigint) from ("
        "select id, created_at, row_number() over (order by created_at desc, id desc) as n "
        f"from {table} where account = $account and created_at is not null) as ranked "
        f"where n in ({', '.join('$' + name for name in positions)}) order by n",
        account=account,
        **positions,
    )
    return [(str(batch_id), int(created)) for batch_id, created in found]


def _stored_hashes(read: _Reader, account: str) -> dict[str, str]:
    """id -> `content_hash` of the account's stored batches (none before they had one)."""
    found = read.tolerant(
        f"select id, {HASH_COLUMN} from {DATASET_NAME}.{BATCHES_TABLE} "
        f"where account = $account and {HASH_COLUMN} is not null",
        account=account,
    )
    return {str(batch_id): str(digest) for batch_id, digest in found or []}


# the terminal statuses as a SQL list, for the queries that tell open batches apart
_TERMINAL = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))


def _incremental_plan(read: _Reader, account: str, segments: int) -> PagePlan:
    """An incremental run's segments (`incremental_segments`), from the stored statuses.

    Reads the newest loaded batches until it holds the first page the run would not read
    and one more (a few thousand rows at most, in practice): never the whole history.
    """
    limit = 2_000
    while True:
        found = read.tolerant(
            "select id, cast(extract(epoch from created_at) as bigint), "
            f"status not in ({_TERMINAL}) from {DATASET_NAME}.{BATCHES_TABLE} "
            "where account = $account and created_at is not null "
            "order by created_at desc, id desc limit $limit",
            account=account,
            limit=limit,
        )
        if not found:
            return PagePlan([])
        known = [(str(i), int(c), bool(is_open)) for i, c, is_open in found]
        plan = incremental_segments(known, segments)
        if len(known) < limit or plan.retrieve_below is not None or not plan.starts:
            return plan
        limit *= 4  # every fetched page was worth reading: the plan needs more of them


def _open_below(read: _Reader, account: str, second: int) -> list[str]:
    """The stored open batches created before `second`: those an incremental run's plan
    retrieves while its pages are read (`AccountProgress.open_created_before` from the
    state, which commits with these rows: the same batches)."""
    found = read.tolerant(
        f"select id from {DATASET_NAME}.{BATCHES_TABLE} where account = $account "
        f"and status not in ({_TERMINAL}) "
        "and cast(extract(epoch from created_at) as bigint) < $second",
        account=account,
        second=second,
    )
    return [str(batch_id) for (batch_id,) in found or []]


@dataclass
class AccountRun:
    """One account's outcome: a summary, or the error that stopped it."""

    account: str
    summary: Summary | None = None
    error: BaseException | None = None


def run_extraction(
    db: Path | Target,
    account: Account,
    full: bool = False,
    progress: Callable[[int, int], None] | None = None,
    build_views: bool = True,
    requests: str = DEFAULT_REQUESTS_MODE,
) -> Summary:
    """Loads one account; any failure propagates and leaves the database as it was."""
    (run,) = extract_accounts(
        db, [account], full, progress, build_views, isolate=False, requests=requests
    )
    assert run.summary is not None
    return run.summary


def extract_accounts(
    db: Path | Target,
    accounts: list[Account],
    full: bool = False,
    progress: Callable[[int, int], None] | None = None,
    build_views: bool = True,
    isolate: bool = True,
    overrides: Overrides | None = None,
    requests: str = DEFAULT_REQUESTS_MODE,
) -> list[AccountRun]:
    """Loads each account in its own load package, then rebuilds the views, under one lock.

    With `isolate`, a failing account is reported and the others still load: each
    account's data and state commit together, so a failure loses nothing already loaded.
    `overrides` are the prices the views use over the catalogue's (see `prices`).
    """
    target = db if isinstance(db, Target) else Target("duckdb", label=str(db), db=db)
    target.check()
    fresh_state = not target.state_dir().exists()
    parallel = parallelism()
    target.state_dir().mkdir(parents=True, exist_ok=True)
    runs: list[AccountRun] = []
    removed = False
    try:
        with target.lock():
            # Looked at under the lock: the file of a run that just finished is not fresh.
            fresh_db = target.db is not None and not target.db.exists()
            try:
                _extract_locked(
                    target,
                    accounts,
                    full,
                    progress,
                    build_views,
                    isolate,
                    runs,
                    overrides,
                    requests,
                    parallel,
                )
            finally:
                # A run that loaded nothing into a file it created takes the file away.
                if fresh_db and not any(run.summary is not None for run in runs):
                    _remove_database(target)
                    removed = True
    finally:
        if removed and fresh_state:
            shutil.rmtree(target.state_dir(), ignore_errors=True)
    return runs


class ViewsNotBuiltError(BatchlensError):
    """The load is committed, but the views could not be rebuilt on it: a separate outcome."""

    exit_code = 5

    def __init__(self, cause: BatchlensError, runs: list[AccountRun]) -> None:
        super().__init__(
            f"the batches are loaded, but the views were not rebuilt ({cause}); the previous "
            "views are unchanged: fix the model and run `batchlens models`"
        )
        self.runs = runs


def _remove_database(target: Target) -> None:
    """The file, and dlt's working folder: its state described the file, and must not
    outlive it (the next run would take it for the state of a new, empty file)."""
    assert target.db is not None
    target.db.unlink(missing_ok=True)
    Path(f"{target.db}.wal").unlink(missing_ok=True)
    shutil.rmtree(target.state_dir() / "pipelines", ignore_errors=True)


def _extract_locked(
    target: Target,
    accounts: list[Account],
    full: bool,
    progress: Callable[[int, int], None] | None,
    build_views: bool,
    isolate: bool,
    runs: list[AccountRun],
    overrides: Overrides | None,
    requests: str,
    parallel: Parallelism,
) -> None:
    with contextlib.closing(open_database(target)) as connection:
        # Before anything is loaded: a model that cannot be built fails the run there, while
        # the rows and the incremental state are as they were. Asked once the first
        # account's first requests are in flight, so that it costs no wall time.
        check = (
            _Once(lambda: check_models(connection, dialect=target.dialect, overrides=overrides))
            if build_views
            else None
        )
        pipeline = open_pipeline(target, connection)
        drop_handed_over_packages(Path(pipeline.working_dir))
        if pipeline.has_pending_data:
            # A run killed during load left a package: land it before extracting more.
            if check is not None:
                check()
            merge_extracted_packages(pipeline)
            pipeline.run()
        for account in accounts:
            try:
                read = _Reader(connection, target.dialect)
                summary = _extract_one(
                    pipeline, read, account, full, progress, parallel, requests, check
                )
                runs.append(AccountRun(account.name, summary))
            except Exception as exc:
                # Only an extraction failure is isolated: a package stuck in load would make
                # dlt's next run() load it instead of extracting the next account, and a
                # model that cannot be built fails every account.
                if not isolate or classify(exc) is None or pipeline.has_pending_data:
                    raise
                if check is not None and check.failed:
                    raise
                runs.append(AccountRun(account.name, error=exc))
        # With every account failed there may be nothing to build on, and the real failure
        # must not be hidden behind a model error.
        if build_views and any(run.summary is not None for run in runs):
            try:
                build_models(
                    connection, dialect=target.dialect, overrides=overrides, only_if_changed=True
                )
            except BatchlensError as exc:  # checked before the load: rare, e.g. a new column
                raise ViewsNotBuiltError(exc, runs) from exc


class _Once:
    """Calls `function` the first time it is called; remembers whether that failed."""

    def __init__(self, function: Callable[[], None]) -> None:
        self.function = function
        self.done = False
        self.failed = False

    def __call__(self) -> None:
        if self.done:
            return
        try:
            self.function()
        except BaseException:
            self.failed = True
            raise
        self.done = True


def _extract_one(
    pipeline: dlt.Pipeline,
    read: _Reader,
    account: Account,
    full: bool,
    progress: Callable[[int, int], None] | None,
    parallel: Parallelism,
    requests: str = DEFAULT_REQUESTS_MODE,
    before_load: Callable[[], None] | None = None,
) -> Summary:
    """One account's load package; `before_load` is asked once its first requests are out."""
    started = time.monotonic()
    requests = account.requests or requests
    before = _row_counts(read)
    known_files, stored_files = ledger_in_destination(
        read, DATASET_NAME, account.name, requests_kinds(requests)
    )
    # An incremental run's pages stand in for retrieves (each saves two or more), so they
    # are read as many at once as the retrieves are; `--full` has its own width.
    segments = parallel.full_segments if full else parallel.retrieve_concurrency
    plan = PagePlan([])
    if segments > 1 and account.provider in SEGMENTED_PROVIDERS:
        if full:
            plan = PagePlan(_segment_starts(read, account.name, segments))
        else:
            plan = _incremental_plan(read, account.name, segments)
    open_below = (
        _open_below(read, account.name, plan.retrieve_below)
        if plan.retrieve_below is not None
        else None
    )
    # The requests that do not depend on the resource state go out now: the views' check,
    # dlt's setup (and the pandas import of the first bound parameter) overlap them.
    early = EarlyRequests()
    source = openai_batches(
        api_key=account.api_key,
        base_url=account.base_url,
        provider=account.provider,
        headers=account.headers,
        account=account.name,
        full=full,
        progress=progress,
        requests=requests,
        known_files=known_files,
        stored_files=stored_files,
        retrieve_concurrency=parallel.retrieve_concurrency,
        full_segments=parallel.full_segments,
        plan=plan,
        # a --full run reads every batch again: only those that changed are merged
        stored_hashes=_stored_hashes(read, account.name) if full else None,
        nothing_loaded=_nothing_loaded(read, account.name),
        early=early,
        open_below=open_below,
    )
    interrupted = False
    try:
        # DuckDB's client imports pandas at the first bound parameter (the views' check,
        # dlt's setup) from C++, which swallows a Ctrl-C or SIGTERM that lands during the
        # import and leaves pandas half-imported. Imported here, while the first requests
        # are in flight, an interrupt stops the run as it should.
        importlib.import_module("pandas")
        if before_load is not None:
            before_load()
        info = pipeline.run(source)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # the process is ending on Ctrl-C: no waiting for the requests in flight
        early.close(wait=not interrupted)
    after = _row_counts(read)
    summary = Summary(new=after.get(account.name, 0) - before.get(account.name, 0))
    for row in _run_rows(read, info.loads_ids):
        lists, retrieves, attempts, changes, still_open, file_requests, files, lines = row
        summary.pages += lists
        summary.requests += lists + retrieves
        summary.retries += max(0, attempts - lists - retrieves - file_requests)
        summary.files += files
        summary.request_rows += lines
        summary.updated += changes
        summary.still_open += still_open
    summary.seconds = time.monotonic() - started
    return summary


class Progress:
    """Pages and batches so far on stderr, for runs long enough to wonder about."""

    def __init__(self, first_after: float = 2.0, every: float = 2.0) -> None:
        self.started = time.monotonic()
        self.next_at = self.started + first_after
        self.every = every

    def __call__(self, pages: int, batches: int) -> None:
        now = time.monotonic()
        if now >= self.next_at:
            self.next_at = now + self.every
            print(
                f"batchlens: {pages} pages, {batches} batches so far ({now - self.started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
