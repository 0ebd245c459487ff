"""One extraction run, as cron needs it: locked, committed in steps, with a summary.

The run plans what to read from the destination (`plan.py`), runs the dlt source with
that plan (`pipeline.py` holds dlt's side) in steps: each step is one load package, its
rows committed together with the incremental state that says where the next step goes on.
A short incremental run is one step; a first or `--full` run over a long history is many
(every few thousand batches or every minute), so a run that stops halfway keeps what its
steps committed and the next run goes on from there. The views are rebuilt at the end.
Nothing is ever half-written: a step is in the database with its state, or is not
(docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt

from batchlens.config import Account, Parallelism, parallelism
from batchlens.errors import BatchlensError, UsageError, classify
from batchlens.run.pipeline import (
    drop_handed_over_packages,
    merge_extracted_packages,
    open_database,
    open_pipeline,
    state_dir,
)
from batchlens.run.plan import Reader, row_counts
from batchlens.run.sources import source_of
from batchlens.run.summary import Progress, Summary
from batchlens.storage.target import Target
from batchlens.views.build import build_models, check_models
from batchlens.views.prices import Overrides
from openai_batches.files import DEFAULT_REQUESTS_MODE
from openai_batches.parallel import EarlyRequests
from openai_batches.steps import Steps

# what the command and the demo use from here
__all__ = [
    "Progress",
    "Summary",
    "ViewsNotBuiltError",
    "extract_accounts",
    "run_extraction",
    "state_dir",
]


@dataclass
class AccountRun:
    """One account's outcome: a summary, or the error that stopped it."""

    account: str
    summary: Summary | None = None
    error: BaseException | None = None


# When a step commits: after so many batches read, files started or seconds passed. At a
# real API's latency (0.3-0.5 s a page) a step is some 20 s of pages; what an interruption
# costs is the step in progress, what a step costs is about a tenth of a second.
STEP_LIMITS = {"batches": 5_000, "seconds": 60.0, "files": 1_000}


def step_limits() -> dict[str, float]:
    """`[batchlens] commit_every_batches`, `commit_every_seconds`, `commit_every_files`."""
    limits: dict[str, float] = {}
    for name, default in STEP_LIMITS.items():
        value = dlt.config.get(f"batchlens.commit_every_{name}")
        if value is None:
            limits[name] = default
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not number > 0 or math.isinf(number):
            raise UsageError(
                f"[batchlens] commit_every_{name} = {value!r}: a number above 0 is expected"
            )
        limits[name] = number
    return limits


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
    limits = step_limits()
    committed: list[str] = []  # the load packages of every step that landed
    target.state_dir().mkdir(parents=True, exist_ok=True)
    runs: list[AccountRun] = []
    removed = False
    try:
        with target.lock():
            # Looked at under the lock: the file of a run that just finished is not fresh.
            fresh_db = target.db is not None and not target.db.exists()
            shown = progress.running() if isinstance(progress, Progress) else _quiet()
            try:
                with shown:
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
                        _Settings(parallel, limits, committed),
                    )
            finally:
                # A run that loaded nothing into a file it created takes the file away;
                # one that committed a step keeps it, and the next run goes on from there.
                if fresh_db and not committed:
                    _remove_database(target)
                    removed = True
    finally:
        if removed and fresh_state:
            shutil.rmtree(target.state_dir(), ignore_errors=True)
    return runs


def _quiet() -> contextlib.AbstractContextManager[None]:
    """No progress lines: a caller that passed a plain callback, or none."""
    return contextlib.nullcontext()


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


@dataclass(frozen=True)
class _Settings:
    parallel: Parallelism
    limits: dict[str, float]
    committed: list[str]


def _extract_locked(
    target: Target,
    accounts: list[Account],
    full: bool,
    progress: Callable[..., None] | None,
    build_views: bool,
    isolate: bool,
    runs: list[AccountRun],
    overrides: Overrides | None,
    requests: str,
    settings: _Settings,
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
        pipeline = open_pipeline(
            target, connection, progress.collector if isinstance(progress, Progress) else None
        )
        drop_handed_over_packages(Path(pipeline.working_dir))
        if pipeline.has_pending_data:
            # A run killed during load left a package: land it before extracting more.
            if check is not None:
                check()
            merge_extracted_packages(pipeline)
            info = pipeline.run()
            settings.committed.extend(info.loads_ids if info is not None else ())
        for account in accounts:
            try:
                read = Reader(connection, target.dialect)
                summary = _extract_one(
                    pipeline, read, account, full, progress, settings, requests, check
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
            if isinstance(progress, Progress):
                progress.phase = "building the views"
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
    read: Reader,
    account: Account,
    full: bool,
    progress: Callable[..., None] | None,
    settings: _Settings,
    requests: str = DEFAULT_REQUESTS_MODE,
    before_load: Callable[[], None] | None = None,
) -> Summary:
    """One account's steps; `before_load` is asked once its first requests are out.

    Each step is one `pipeline.run`, its package committed with the state it leaves; the
    source says whether another step is due (`Steps.more`). SIGINT and SIGTERM while a
    step reads the pages of a walk or downloads files end that step at its next page or
    file; during its commit, they let the commit finish; either way the run is then
    interrupted (`_stop_at_a_step`).
    """
    started = time.monotonic()
    requests = account.requests or requests
    before = row_counts(read)
    reader = source_of(account)
    stored = reader.plan(read, account, full, requests, settings.parallel)
    steps = Steps(**settings.limits)
    if isinstance(progress, Progress):
        progress.steps = steps  # its API's and its files' counters, for the progress line
    # The requests that do not depend on the resource state go out now: the views' check,
    # dlt's setup (and the pandas import of the first bound parameter) overlap them.
    early = EarlyRequests()
    loads: list[str] = []
    interrupted = False
    try:
        with _stop_at_a_step(steps):
            source = reader.for_account(
                account, full, requests, stored, settings.parallel, progress, early, steps
            )
            # DuckDB's client imports pandas at the first bound parameter (the views' check,
            # dlt's setup) from C++, which swallows a Ctrl-C or SIGTERM that lands during
            # the import and leaves pandas half-imported. Imported here, while the first
            # requests are in flight, an interrupt stops the run as it should.
            importlib.import_module("pandas")
            if before_load is not None:
                before_load()
            while True:
                info = pipeline.run(source)
                steps.stoppable = False  # stoppable from the end of its reading to here
                loads.extend(info.loads_ids)
                settings.committed.extend(info.loads_ids)
                if steps.stop.is_set():
                    raise KeyboardInterrupt  # the step asked to stop is in: now stop
                if not steps.more:
                    break
                source = reader.for_account(
                    account, full, requests, stored, settings.parallel, progress, early, steps
                )
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # the process is ending on Ctrl-C: no waiting for the requests in flight
        early.close(wait=not interrupted)
        steps.close(wait=not interrupted)
    after = row_counts(read)
    summary = Summary(new=after.get(account.name, 0) - before.get(account.name, 0))
    summary.add_runs(read, loads, account.name)
    summary.seconds = time.monotonic() - started
    return summary


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _stop_at_a_step(steps: Steps) -> Iterator[None]:
    """SIGINT and SIGTERM end the step at its next page or file where a step can end there
    (`Steps.stoppable`): what it read commits, then the run is interrupted. Anywhere else,
    and for a second signal, the handler that was there before does as it did.

    Only the main thread can handle signals: elsewhere this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in _SIGNALS}

    def handler(number: int, frame: Any) -> None:
        if steps.stoppable and not steps.stop.is_set():
            steps.stop.set()
            return
        before = previous[number]
        if callable(before):
            before(number, frame)
        elif before != signal.SIG_IGN:  # the default: end the process as it would have
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)

    for number in _SIGNALS:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, before in previous.items():
            signal.signal(number, before)
