"""What a run says when it ends (one line for cron) and while it runs (stderr)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai_batches.settings import DATASET_NAME, EXTRACTIONS_TABLE


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

    def add_runs(self, read: Any, load_ids: list[str]) -> None:
        """Adds the counts of the run's rows in `extractions` (one per load package)."""
        for row in _run_rows(read, load_ids):
            lists, retrieves, attempts, changes, still_open, file_requests, files, lines = row
            self.pages += lists
            self.requests += lists + retrieves
            self.retries += max(0, attempts - lists - retrieves - file_requests)
            self.files += files
            self.request_rows += lines
            self.updated += changes
            self.still_open += still_open


def _run_rows(read: Any, load_ids: list[str]) -> list[tuple]:
    if not load_ids:
        return []
    marks = ", ".join(f"$id{i}" for i in range(len(load_ids)))
    return read(
        "select list_requests, retrieve_requests, http_attempts, status_changes, still_open, "
        "file_requests, files_downloaded, request_rows "
        f"from {DATASET_NAME}.{EXTRACTIONS_TABLE} where _dlt_load_id in ({marks})",
        **{f"id{i}": load_id for i, load_id in enumerate(load_ids)},
    )


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
