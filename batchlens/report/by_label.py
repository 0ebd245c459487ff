"""`batchlens report --by metadata.KEY`: the window's batches grouped by one metadata label.

Teams put owner, project or customer in a batch's `metadata`; `batch_facts.metadata` carries
it as JSON. The query (`sql/queries/report/by_label.sql`) counts the window's batches per
value; how the terminal ones ended and their failure rate are `failure_rates`' `label`
grain, the rate defined where every other rate is.
"""

from __future__ import annotations

from typing import Any

from batchlens.errors import UsageError

PREFIX = "metadata."


def metadata_key(by: str) -> str:
    """The KEY of `--by metadata.KEY`; anything else is a usage error."""
    key = by[len(PREFIX) :] if by.startswith(PREFIX) else ""
    if not key:
        raise UsageError(f"--by takes metadata.KEY (for example metadata.owner), got {by!r}")
    if key.startswith(("$", "/")):  # DuckDB would read it as a JSON path or pointer
        raise UsageError(f"--by: a metadata key starting with $ or / is not supported: {key!r}")
    return key


def by_metadata(run: Any, key: str, days: int) -> list[dict]:
    """One row per value of `metadata[key]` (None: batches without it), most batches first;
    `run(name, **params)` runs the report's query `name`."""
    return run("by_label", key=key, days=days)
