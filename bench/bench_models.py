"""How long each SQL model takes to answer a full `select *` over 1,000,000 batches.

The data is generated in SQL, straight into tables shaped like the loader's
(`openai_batches.batches`, `batches__errors__data`, `extractions`): a year of history,
two accounts, a realistic mix of statuses and durations, a few hundred batches still open.
Going through HTTP and dlt would measure the loader, which has its own benchmark.

Each view is fetched whole into Arrow, as a notebook would (`count(*)` over a view would
let DuckDB skip the columns nobody reads). Every timing is the median of 3 runs, shown
next to a plain `count(*)` over the raw table and a fetch of the whole raw table, to give
the numbers a meaning on whatever machine runs this.

    .venv/bin/python bench/bench_models.py [--batches 1000000] [--keep PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from batchlens.report.terminal import report
from batchlens.storage.duckdb_connection import connect
from batchlens.views.build import build_models

VIEWS = (
    "batch_facts",
    "failure_rates_daily",
    "duration_stats_daily",
    "active_batches",
    "active_batches_hourly",
    "batch_errors",
    "open_batches",
)
TARGET_SECONDS = 1.0
RUNS = 3

# 2026-01-01T00:00:00Z, the simulator's "now": the history runs over the year before it.
AS_OF = "2026-01-01 00:00:00+00"

# u0..u5 are independent uniform draws in [0, 1) per batch, from a hash of its number, so
# the data is the same on every run and every thread count (random() is neither).
GENERATE_BATCHES = """
create table openai_batches.batches as
with

draws as (
    select
        i,
        (hash(i, 1) % 1000000) / 1e6 as u0,
        (hash(i, 2) % 1000000) / 1e6 as u1,
        (hash(i, 3) % 1000000) / 1e6 as u2,
        (hash(i, 4) % 1000000) / 1e6 as u3,
        (hash(i, 5) % 1000000) / 1e6 as u4,
        (hash(i, 6) % 1000000) / 1e6 as u5
    from range({n}) as t (i)
),

shaped as (
    select
        *,
        -- created over the 365 days before "as of", in order of i
        timestamptz '{as_of}' - interval 365 day
            + to_seconds(cast(i * 365 * 86400 / {n} as bigint)) as created_at,
        case
            when u0 < 0.62 then 'completed'
            when u0 < 0.71 then 'completed_partial'
            when u0 < 0.73 then 'completed_all_failed'
            when u0 < 0.78 then 'completed_slow'
            when u0 < 0.86 then 'failed_validation'
            when u0 < 0.89 then 'failed_run'
            when u0 < 0.94 then 'expired'
            else 'cancelled'
        end as scenario,
        cast(pow(10, u1 * 4.5) as bigint) + 1 as total,
        5 + cast(u2 * 235 as bigint) as validating_s,
        60 + cast(u3 * 20000 as bigint) as run_s,
        5 + cast(u4 * 1800 as bigint) as finalizing_s
    from draws
),

timed as (
    select
        *,
        created_at + to_seconds(validating_s) as in_progress_at_planned,
        created_at + to_seconds(validating_s + run_s) as finalizing_at_planned,
        created_at + to_seconds(
            validating_s + run_s
            + case when scenario = 'completed_slow' then 86400 + finalizing_s * 100
                else finalizing_s end
        ) as completed_at_planned,
        created_at + interval 24 hour as expires_at
    from shaped
),

seen as (
    -- a stage is visible only if it was reached by "as of": recent batches are still open
    select
        *,
        scenario like 'completed%' and completed_at_planned <= timestamptz '{as_of}'
            as is_completed,
        scenario like 'completed%' and finalizing_at_planned <= timestamptz '{as_of}'
            as is_finalizing,
        scenario <> 'failed_validation' and in_progress_at_planned <= timestamptz '{as_of}'
            as is_in_progress
    from timed
)

select
    printf('batch_%024x', hash(i)) as id,
    'batch' as object,
    case when u5 < 0.45 then '/v1/chat/completions'
        when u5 < 0.65 then '/v1/responses'
        when u5 < 0.85 then '/v1/embeddings'
        else '/v1/moderations' end as endpoint,
    case when u5 < 0.02 then null
        when u5 < 0.30 then 'gpt-4o-mini'
        when u5 < 0.45 then 'gpt-4.1-mini'
        when u5 < 0.55 then 'gpt-5-mini'
        when u5 < 0.65 then 'o4-mini'
        when u5 < 0.85 then 'text-embedding-3-small'
        else 'omni-moderation-latest' end as model,
    printf('file-%022x', hash(i, 7)) as input_file_id,
    '24h' as completion_window,
    case
        when scenario like 'completed%' then
            case when is_completed then 'completed'
                when is_finalizing then 'finalizing'
                when is_in_progress then 'in_progress'
                else 'validating' end
        when scenario = 'failed_validation' then
            case when created_at + to_seconds(validating_s) <= timestamptz '{as_of}'
                then 'failed' else 'validating' end
        when scenario = 'failed_run' then
            case when finalizing_at_planned <= timestamptz '{as_of}' then 'failed'
                when is_in_progress then 'in_progress' else 'validating' end
        when scenario = 'expired' then
            case when expires_at <= timestamptz '{as_of}' then 'expired'
                when is_in_progress then 'in_progress' else 'validating' end
        else
            case when finalizing_at_planned + interval 5 minute <= timestamptz '{as_of}'
                    then 'cancelled'
                when finalizing_at_planned <= timestamptz '{as_of}' then 'cancelling'
                when is_in_progress then 'in_progress' else 'validating' end
    end as status,
    case when is_completed and scenario <> 'completed_all_failed'
        then printf('file-%022x', hash(i, 8)) end as output_file_id,
    case when is_completed and scenario in ('completed_partial', 'completed_all_failed')
        then printf('file-%022x', hash(i, 9)) end as error_file_id,
    created_at,
    case when is_in_progress then in_progress_at_planned end as in_progress_at,
    expires_at,
    case when is_finalizing then finalizing_at_planned end as finalizing_at,
    case when is_completed then completed_at_planned end as completed_at,
    case
        when scenario = 'failed_validation'
            and created_at + to_seconds(validating_s) <= timestamptz '{as_of}'
            then created_at + to_seconds(validating_s)
        when scenario = 'failed_run' and finalizing_at_planned <= timestamptz '{as_of}'
            then finalizing_at_planned
    end as failed_at,
    case when scenario = 'expired' and expires_at <= timestamptz '{as_of}'
        then expires_at end as expired_at,
    case when scenario = 'cancelled' and finalizing_at_planned <= timestamptz '{as_of}'
        then finalizing_at_planned end as cancelling_at,
    case when scenario = 'cancelled'
            and finalizing_at_planned + interval 5 minute <= timestamptz '{as_of}'
        then finalizing_at_planned + interval 5 minute end as cancelled_at,
    case when scenario = 'failed_validation' then 0 else total end as request_counts__total,
    case when scenario = 'completed_all_failed' then 0
        when scenario = 'completed_partial' then total - total // 10
        when scenario like 'completed%' then total
        when scenario = 'failed_validation' then 0
        else total // 2 end as request_counts__completed,
    case when scenario = 'completed_all_failed' then total
        when scenario = 'completed_partial' then total // 10
        else 0 end as request_counts__failed,
    case when is_completed and model is not null then total * 800 end as usage__input_tokens,
    case when is_completed and model is not null then total * 100 end
        as usage__input_tokens_details__cached_tokens,
    case when is_completed and model is not null then total * 300 end as usage__output_tokens,
    case when is_completed and model is not null then 0 end
        as usage__output_tokens_details__reasoning_tokens,
    case when is_completed and model is not null then total * 1100 end as usage__total_tokens,
    cast(null as json) as metadata,
    case when u4 < 0.7 then 'default' else 'team-b' end as account
from seen
"""

GENERATE_ERRORS = """
create table openai_batches.batches__errors__data as
select
    account,
    id as batch_id,
    cast(position as bigint) as position,
    case when position = 0 then 'invalid_json' else 'token_limit_exceeded' end as code,
    case when position = 0 then 'Line 3 is not valid JSON.'
        else 'Enqueued token limit reached.' end as message,
    cast(null as varchar) as param,
    case when position = 0 then cast(3 as bigint) end as line
from openai_batches.batches
cross join range(2) as p (position)
where status = 'failed' and (position = 0 or hash(id) % 3 = 0)
"""

GENERATE_EXTRACTIONS = """
create table openai_batches.extractions as
select
    account,
    'incremental' as mode,
    timestamptz '{as_of}' - to_minutes(cast(60 * k as bigint)) as started_at,
    timestamptz '{as_of}' - to_minutes(cast(60 * k as bigint)) + interval 3 second
        as finished_at,
    cast(1 as bigint) as pages,
    cast(1 as bigint) as list_requests,
    cast(0 as bigint) as retrieve_requests,
    cast(1 as bigint) as http_attempts,
    cast(10 as bigint) as batches_loaded,
    cast(2 as bigint) as status_changes,
    cast(5 as bigint) as still_open,
    cast(k as varchar) as _dlt_load_id,
    cast(k as varchar) || account as _dlt_id
from range(24) as r (k)
cross join (values ('default'), ('team-b')) as a (account)
"""


def generate(db: Path, batches: int) -> None:
    # attached as batchlens attaches any file: the names below hold whatever the file is called
    with contextlib.closing(connect(db)) as connection:
        connection.execute("create schema openai_batches")
        connection.execute(GENERATE_BATCHES.format(n=batches, as_of=AS_OF))
        connection.execute(GENERATE_ERRORS)
        connection.execute(GENERATE_EXTRACTIONS.format(as_of=AS_OF))
        build_models(connection)


def median_seconds(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        db = args.keep or Path(folder) / "bench.duckdb"
        started = time.perf_counter()
        generate(db, args.batches)
        print(f"generated {args.batches:,} batches in {time.perf_counter() - started:.1f} s")

        rows: list[tuple[str, float, int]] = []
        with contextlib.closing(connect(db, read_only=True)) as connection:

            def count_raw() -> None:
                connection.execute("select count(*) from openai_batches.batches").fetchall()

            def fetch(relation: str) -> int:
                return connection.sql(f"select * from {relation}").to_arrow_table().num_rows

            count_s = median_seconds(count_raw)
            rows.append(("count(*) over batches (baseline)", count_s, args.batches))
            raw_s = median_seconds(lambda: fetch("openai_batches.batches"))
            rows.append(("fetch of batches (baseline)", raw_s, args.batches))
            for view in VIEWS:
                relation = f"openai_batches.{view}"
                seconds = median_seconds(lambda relation=relation: fetch(relation))
                rows.append((view, seconds, fetch(relation)))
        rows.append(("report() table", median_seconds(lambda: report(db)), 0))
        rows.append(("report() json", median_seconds(lambda: report(db, fmt="json")), 0))

    print(f"{'model':<34} {'seconds':>9} {'x count(*)':>11} {'x fetch':>8} {'rows':>11}")
    slow = []
    for name, seconds, count in rows:
        ratio = seconds / count_s if count_s else float("nan")
        print(f"{name:<34} {seconds:>9.4f} {ratio:>11.0f} {seconds / raw_s:>8.2f} {count:>11,}")
        if "baseline" not in name and seconds >= TARGET_SECONDS:
            slow.append(name)
    if slow:
        print(f"over the {TARGET_SECONDS:.0f} s target: {', '.join(slow)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
