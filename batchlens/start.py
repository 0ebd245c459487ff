"""The `batchlens` command's process: imports without the garbage collector, quick exit.

The CLI's imports (dlt, pyarrow, DuckDB, sqlglot) create some 160,000 objects
that live as long as the process. Python's cyclic collector walks all of them again and
again while they are created, and once more as the process exits: about half a second of
every run, measured paired on a cron run with nothing new (BENCHMARKS.md). Frozen, they
are left out of every collection; the run's own objects are collected as usual.

Once the command has returned, everything it opened is closed (databases, pools, files:
each in a `with` or `finally`), so the interpreter's teardown only frees memory and
unloads modules: 0.1-0.2 s a run. The process ends without it, after flushing what is
buffered.
"""

from __future__ import annotations

import gc
import logging
import os
import sys


def entry() -> None:
    gc.disable()
    try:
        from batchlens import cli
    finally:
        gc.freeze()  # what the imports made lives as long as the process
        gc.enable()
    code = cli.main()
    exit_now(code)


def exit_now(code: int) -> None:
    """Ends the process with `code` once output and logs are flushed, skipping teardown."""
    from batchlens.errors import BROKEN_PIPE  # imported with the CLI

    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or BROKEN_PIPE
    os._exit(code)
