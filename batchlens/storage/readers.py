"""Opening a DuckDB file to read it while cron may be writing it.

DuckDB allows one writer and no reader beside it, so `report`, `sql`, `prices`,
`failed-requests` and `check` started during an `extract` cannot open the file. They wait
for the extraction instead: batchlens' own lock file (`lock.py`) says whether the writer is
an extraction, and which. A reader waits up to its `--wait` seconds, says once on stderr
that it is waiting, and reads as soon as the extraction has let go; when the wait runs out
it names the extraction as an extraction. A DuckDB session left open (the duckdb CLI, a
notebook) is not waited for: it does not end by itself, so the reader says at once that the
session holds the file. PostgreSQL and DuckLake never block a reader.

Before any of that, a path that cannot be a database is refused in words (a folder, a file
that is not DuckDB's) rather than with DuckDB's own error.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from batchlens.errors import LOCKED, LockedError, UsageError, classify, first_line
from batchlens.storage.duckdb_file import check_database_file
from batchlens.storage.lock import holder_info

if TYPE_CHECKING:
    from batchlens.storage.target import Target

POLL_SECONDS = 0.2


class EmptyDatabaseError(UsageError):
    """A database that holds none of batchlens' tables: an empty DuckDB file (such as one a
    `duckdb FILE` line created), or a server schema nothing was loaded into."""

    def __init__(self, label: str, dialect: str) -> None:
        where = f" --db {label}" if dialect == "duckdb" else ""
        super().__init__(
            f"the database {label} holds no batchlens tables: nothing was extracted into it "
            f"yet. Run `batchlens extract{where}` (it builds the views too)"
        )


@dataclass(frozen=True)
class Holder:
    """The extraction holding a database's lock file, as its lock file describes it."""

    pid: int | None = None  # None: it has not written its name yet
    host: str = ""
    command: str = ""
    started: str = ""

    @property
    def description(self) -> str:
        if self.pid is None:
            return "a process that has not written its name yet"
        return f"pid {self.pid} on {self.host}, `{self.command}` since {self.started}"


class ExtractionRunningError(LockedError):
    """An extraction held the DuckDB file for longer than the reader would wait (exit 3)."""

    def __init__(self, holder: Holder, waited: float) -> None:
        super().__init__(
            f"an extraction is writing the database ({holder.description}) and did not finish "
            f"within {waited:g} s; DuckDB allows no reader beside a writer. Run this again "
            "once it has ended, or give it longer with --wait SECONDS"
        )
        self.holder = holder


def extraction_holder(lock_file: Path) -> Holder | None:
    """The extraction that holds `lock_file` (see lock.py), without taking it; None if none.

    A shared probe that is let go at once: an extraction starting meanwhile retries for a
    second (lock.WAIT_SECONDS), far longer than the probe lasts.
    """
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            info = holder_info(fd)
            return Holder() if info is None else Holder(**info)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def open_duckdb_reader(target: Target, wait_seconds: float) -> Any:
    """A read-only connection to `target`'s DuckDB file, waiting up to `wait_seconds` for
    an extraction that is writing it (saying so on stderr once)."""
    from batchlens.storage.duckdb_connection import connect

    assert target.db is not None
    check_database_file(target.db)
    deadline = time.monotonic() + wait_seconds
    said = False
    unexplained = 0  # lock conflicts with no extraction holding the lock file
    while True:
        try:
            return connect(target.db, read_only=True)
        except duckdb.Error as exc:
            known = classify(exc)
            if known is None or known[0] != LOCKED:
                raise UsageError(
                    f"cannot open the database {target.db}: {first_line(exc)}"
                ) from None
            holder = extraction_holder(target.state_dir() / "lock")
            if holder is None:
                unexplained += 1
                if unexplained > 1:  # not an extraction that just ended: a session
                    raise LockedError(known[1]) from None
                continue
            if time.monotonic() >= deadline:
                raise ExtractionRunningError(holder, wait_seconds) from None
            if not said:
                print(_waiting(holder, wait_seconds), file=sys.stderr, flush=True)
                said = True
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _waiting(holder: Holder, wait_seconds: float) -> str:
    which = "an extraction" if holder.pid is None else f"extraction PID {holder.pid}"
    since = (
        ""
        if holder.pid is None
        else f" (`{holder.command}` on {holder.host}, since {holder.started})"
    )
    return (
        f"batchlens: waiting up to {wait_seconds:g} s for {which}{since} to finish "
        "writing the database (--wait SECONDS)"
    )
