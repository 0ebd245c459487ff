"""The `batchlens` command's process start: imports without the garbage collector.

The CLI's imports (dlt, pyarrow, DuckDB, sqlglot) create some 160,000 objects
that live as long as the process. Python's cyclic collector walks all of them again and
again while they are created, and once more as the process exits: about half a second of
every run, measured paired on a cron run with nothing new (BENCHMARKS.md). Frozen, they
are left out of every collection; the run's own objects are collected as usual.
"""

from __future__ import annotations

import gc


def entry() -> None:
    gc.disable()
    try:
        from .cli import entry as run
    finally:
        gc.freeze()  # what the imports made lives as long as the process
        gc.enable()
    run()
