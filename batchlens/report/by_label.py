"""`batchlens report --by metadata.KEY`: the window's batches grouped by one metadata label.

Teams put owner, project or customer in a batch's `metadata`; `batch_facts.metadata` carries
it as JSON. The counts come from the view's own status and `is_terminal`; the failure rate
is failed over terminal, as in `failure_rates_daily`, summed before it is divided.
"""

from __future__ import annotations

from typing import Any

from batchlens.errors import UsageError
from batchlens.views.build import SCHEMA

PREFIX = "metadata."

BY_METADATA = f"""
select
    facts.metadata ->> $key as value,
    count(*) as batches,
    count(*) filter (where not facts.is_terminal) as open,
    count(*) filter (where facts.is_terminal) as terminal,
    count(*) filter (where facts.status = 'completed') as completed,
    count(*) filter (where facts.status = 'failed') as failed,
    count(*) filter (where facts.status = 'expired') as expired,
    cast(count(*) filter (where facts.status = 'failed') as double)
    / nullif(count(*) filter (where facts.is_terminal), 0) as failure_rate,
    cast(coalesce(sum(facts.total_tokens), 0) as bigint) as total_tokens
from {SCHEMA}.batch_lifecycle as facts
cross join (
    select cast(as_of at time zone 'UTC' as date) as as_of_day from {SCHEMA}.as_of
) as as_of
where
    facts.created_day > as_of.as_of_day - $days
    and facts.created_day <= as_of.as_of_day
group by facts.metadata ->> $key
order by batches desc, value asc nulls last
"""


def metadata_key(by: str) -> str:
    """The KEY of `--by metadata.KEY`; anything else is a usage error."""
    key = by[len(PREFIX) :] if by.startswith(PREFIX) else ""
    if not key:
        raise UsageError(f"--by takes metadata.KEY (for example metadata.owner), got {by!r}")
    if key.startswith(("$", "/")):  # DuckDB would read it as a JSON path or pointer
        raise UsageError(f"--by: a metadata key starting with $ or / is not supported: {key!r}")
    return key


def by_metadata(run: Any, key: str, days: int) -> list[dict]:
    """One row per value of `metadata[key]` (None: batches without it), most batches first."""
    return run(BY_METADATA, key=key, days=days)
