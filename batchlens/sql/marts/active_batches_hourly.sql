-- sqlfluff:rules:references.keywords:ignore_words:hour
-- (`hour` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- How many batches were active at each UTC hour mark, per account, from the hour of the
-- account's first batch to the hour of "as of". A sweep, not a subquery per hour: each
-- batch adds 1 from the first hour mark at or after its creation and removes 1 from the
-- first hour mark at or after it ended; a running sum over a spine of hours turns those
-- changes into counts. One pass over the batches, then only hour-sized relations.
with

batch_facts as (

    select * from openai_batches.batch_facts

),

as_of as (

    select * from openai_batches.as_of

),

spans as (

    -- UTC wall-clock times built from the instants' microseconds: no time zone rules, so
    -- the session's TimeZone never matters (and it is much cheaper than `at time zone`,
    -- which is what it becomes on PostgreSQL: see batchlens/dialects.py)
    select
        account,
        make_timestamp(epoch_us(created_at)) as created_utc,
        -- active at hour h means created_at <= h < ended_at; an end recorded before the
        -- creation (bad data) just makes the batch never active. `greatest` skips NULLs,
        -- hence the case: a batch still active has no end.
        case
            when ended_at is not null
                then make_timestamp(epoch_us(greatest(created_at, ended_at)))
        end as ended_utc
    from batch_facts

),

marks as (

    select
        account,
        date_trunc('hour', created_utc) as created_hour_utc,
        date_trunc('hour', created_utc)
        + if(
            date_trunc('hour', created_utc) < created_utc,
            interval 1 hour,
            interval 0 hour
        ) as start_hour_utc,
        date_trunc('hour', ended_utc)
        + if(
            date_trunc('hour', ended_utc) < ended_utc,
            interval 1 hour,
            interval 0 hour
        ) as end_hour_utc
    from spans

),

events as (

    -- per batch: 0 at the hour it was created in (where the account's spine may start),
    -- +1 from its first hour mark, -1 from the first hour mark after it ended
    select
        account,
        unnest([created_hour_utc, start_hour_utc, end_hour_utc]) as hour_utc,
        unnest([0, 1, -1]) as active_change
    from marks

),

hourly_changes as (

    select
        account,
        hour_utc,
        sum(active_change) as net_change
    from events
    where hour_utc is not null
    group by account, hour_utc

),

account_spines as (

    select
        hourly_changes.account,
        min(hourly_changes.hour_utc) as first_hour_utc,
        -- one "as of": `max` picks it (sqlglot cannot translate `any_value`)
        date_trunc('hour', make_timestamp(epoch_us(max(as_of.as_of)))) as last_hour_utc
    from hourly_changes
    cross join as_of
    group by hourly_changes.account

),

hours as (

    -- every hour mark from the first to the last, both included (sqlglot mistranslates
    -- DuckDB's `range`; `generate_series` in FROM means the same on both databases)
    select
        account_spines.account,
        spine.hour_utc
    from account_spines
    cross join
        generate_series(
            account_spines.first_hour_utc,
            account_spines.last_hour_utc,
            interval 1 hour
        ) as spine (hour_utc)

),

changes as (

    -- changes after the last hour (a batch that ended during the extraction) drop out here
    select
        hours.account,
        hours.hour_utc,
        coalesce(hourly_changes.net_change, 0) as net_change
    from hours
    left join hourly_changes
        on
            hours.account = hourly_changes.account
            and hours.hour_utc = hourly_changes.hour_utc

),

running_counts as (

    select
        account,
        hour_utc at time zone 'UTC' as hour,
        sum(net_change) over (
            partition by account
            order by hour_utc
            rows between unbounded preceding and current row
        ) as active
    from changes

),

final as (

    select
        hour,
        account,
        cast(active as bigint) as active
    from running_counts

)

select * from final
