"""A single-writer lock per database file, for cron lines that overlap.

dlt has no pipeline lock and two runs of one pipeline can race, so batchlens holds an
exclusive `flock` on a file beside the database for the whole run. The kernel releases
it when the process dies, even by SIGKILL: a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from batchlens.errors import LockedError

WAIT_SECONDS = 1.0  # the CLI contract: give up in under 2 s


class DatabaseLock:
    def __init__(self, path: Path, wait_seconds: float = WAIT_SECONDS) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self._fd: int | None = None

    def __enter__(self) -> DatabaseLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"another extraction holds this database ({holder}); nothing was changed"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder_info()).encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


HOLDER_FIELDS = ("pid", "host", "command", "started")


def _holder_info() -> dict:
    program = Path(sys.argv[0]).name
    if program == "__main__.py":  # `python -m batchlens`
        program = "batchlens"
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # the command only: options may carry header values, never echo them
        "command": program + (" " + sys.argv[1] if len(sys.argv) > 1 else ""),
    }


def holder_info(fd: int) -> dict | None:
    """What the holder of the lock file `fd` wrote about itself; None before it has."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return {name: info[name] for name in HOLDER_FIELDS}
    except (ValueError, KeyError, TypeError, OSError):
        return None


def read_holder(fd: int) -> str:
    info = holder_info(fd)
    if info is None:
        return "a process that has not written its name yet"
    return f"pid {info['pid']} on {info['host']}, `{info['command']}` since {info['started']}"
