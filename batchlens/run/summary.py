"""What a run says when it ends (one line for cron) and while it runs (stderr)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlt.common.runtime.collector_base import Collector

from openai_batches.settings import DATASET_NAME, EXTRACTIONS_TABLE, FILES_TABLE
from openai_batches.steps import WalkProgress


@dataclass
class Summary:
    pages: int = 0
    requests: int = 0
    retries: int = 0
    new: int = 0
    updated: int = 0
    still_open: int = 0
    files: int = 0
    files_failed: int = 0
    request_rows: int = 0
    seconds: float = 0.0
    failed_file: str | None = None  # why one of the `files_failed` failed

    def line(self, db: Path | str, account: str | None = None) -> str:
        named = f"account={account} " if account else ""
        return (
            f"batchlens extract: {named}pages={self.pages} requests={self.requests} "
            f"new={self.new} updated={self.updated} still_open={self.still_open} "
            f"files={self.files} files_failed={self.files_failed} "
            f"request_rows={self.request_rows} retries={self.retries} "
            f"seconds={self.seconds:.2f} db={db}"
        )

    def add_runs(self, read: Any, load_ids: list[str], account: str) -> None:
        """Adds the counts of the run's rows in `extractions`: one per step (load package).

        A step's attempts may include the requests of pages the next step takes (read
        ahead while it committed): the retries are what the steps' sums leave over.
        """
        attempts = requests = 0
        for row in _run_rows(read, load_ids):
            lists, retrieves, tried, changes, still_open, file_requests, files, lines, failed = row
            self.pages += lists
            self.requests += lists + retrieves
            attempts += tried
            requests += lists + retrieves + file_requests
            self.files += files
            self.files_failed += failed or 0
            self.request_rows += lines
            self.updated += changes
            self.still_open = still_open  # the last step's: the run's
        self.retries += max(0, attempts - requests)
        if self.files_failed:
            self.failed_file = _a_failed_file(read, account)


def _marks(load_ids: list[str]) -> tuple[str, dict[str, str]]:
    marks = ", ".join(f"$id{i}" for i in range(len(load_ids)))
    return marks, {f"id{i}": load_id for i, load_id in enumerate(load_ids)}


def _run_rows(read: Any, load_ids: list[str]) -> list[tuple]:
    if not load_ids:
        return []
    marks, params = _marks(load_ids)
    return read(
        "select list_requests, retrieve_requests, http_attempts, status_changes, still_open, "
        "file_requests, files_downloaded, request_rows, files_failed "
        f"from {DATASET_NAME}.{EXTRACTIONS_TABLE} where _dlt_load_id in ({marks}) "
        "order by finished_at",
        **params,
    )


def _a_failed_file(read: Any, account: str) -> str | None:
    """One file of the account the ledger holds as pending, and why: the latest recorded."""
    found = read(
        f"select file_id, batch_id, failure_reason from {DATASET_NAME}.{FILES_TABLE} "
        "where account = $account and state = 'pending' order by loaded_at desc, file_id limit 1",
        account=account,
    )
    if not found:
        return None
    file_id, batch_id, reason = found[0]
    return f"file {file_id} of batch {batch_id}: {reason}"


class Progress:
    """One line on stderr every few seconds while a run is long enough to wonder about.

    Every phase says how far it has got in the same format: the pages and batches read
    (the source reports them, see `__call__`), the open batches retrieved and the files
    downloaded (their bytes and lines, read off the run's `Steps`), and what the run is
    doing now: reading the API, loading (dlt's normalize and load, which dlt reports to
    its collector), or building the views. While the whole list is read (a
    first run, `--full`), how far back it has got; for a run that goes on with one an
    earlier run left unfinished, how much of it is read in all.
    """

    def __init__(self, first_after: float = 2.0, every: float = 2.0) -> None:
        self.started = time.monotonic()
        self.first_after = first_after
        self.every = every
        self.phase = "reading"
        self.pages = self.batches = 0
        self.walk: WalkProgress | None = None
        self.steps: Any = None  # the account's `Steps` in progress: its API and files
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None
        self.collector = _Phases(self)  # what dlt reports its steps to

    def __call__(self, pages: int, batches: int, walk: WalkProgress | None = None) -> None:
        """What the source says after each page (called from its reading threads)."""
        self.pages, self.batches, self.walk = pages, batches, walk

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Prints while the run is inside; never after it (the summary line is last)."""
        self._done.clear()
        self._ticker = threading.Thread(target=self._tick, name="batchlens-progress", daemon=True)
        self._ticker.start()
        try:
            yield
        finally:
            self._done.set()
            self._ticker.join(timeout=1)

    def _tick(self) -> None:
        wait = self.first_after
        while not self._done.wait(wait):
            print(self.line(), file=sys.stderr, flush=True)
            wait = self.every

    def line(self) -> str:
        api = getattr(self.steps, "api", None)
        downloader = getattr(getattr(self.steps, "files_due", None), "downloader", None)
        retrieves = getattr(api, "retrieve_requests", 0)
        files = getattr(downloader, "downloaded", 0)
        megabytes = getattr(downloader, "bytes_read", 0) / 1e6
        lines = getattr(downloader, "rows", 0)
        elapsed = time.monotonic() - self.started
        return (
            f"batchlens: {self.phase}: {self.pages} pages, {self.batches} batches, "
            f"{retrieves} retrieves, {files} files ({megabytes:.1f} MB, {lines} lines) "
            f"so far ({elapsed:.0f} s)" + (_walked(self.walk) if self.walk is not None else "")
        )


class _Phases(Collector):
    """dlt's collector for a `Progress`: dlt's normalize and load are the run's "loading"."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def update(self, name: str, inc: int = 1, total: int | None = None,
               inc_total: int | None = None, message: str | None = None,
               label: str | None = None) -> None:  # fmt: skip
        pass

    def _start(self, step: str) -> None:
        if step.startswith(("Normalize", "Load")):
            self.progress.phase = "loading"

    def _stop(self) -> None:
        if self.progress.phase == "loading":
            self.progress.phase = "reading"  # the next step reads again, or the views follow


def _walked(walk: WalkProgress) -> str:
    what = "first run" if walk.kind == "first" else "--full run"
    back = time.strftime("%Y-%m-%d", time.gmtime(walk.oldest)) if walk.oldest else None
    if walk.resumed:
        return f"; the {what}, resumed: {walk.batches} batches read in all" + (
            f", back to {back}" if back else ""
        )
    return f"; the {what} has read back to {back}" if back else ""
