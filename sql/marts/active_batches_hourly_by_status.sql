-- sqlfluff:rules:references.keywords:ignore_words:hour
-- (`hour` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- active_batches_hourly split by status: how many batches were validating, in progress or
-- finalizing at each UTC hour mark, per account. The same sweep: each batch's active span
-- [created_at, ended_at) is cut into three consecutive pieces at the start of in_progress
-- and of finalizing; each piece adds 1 to its status from the first hour mark at or after
-- its start and removes 1 from the first hour mark at or after its end, and running sums
-- over a spine of hours turn those changes into counts. The pieces never overlap and
-- cover the span exactly, so active_batches_hourly is defined as their sum
-- (tests/test_models_golden.py checks both views against counts of their own).
-- A missing timestamp means the batch skipped that status (failed or cancelled while
-- validating never has in_progress_at): the status starts when the next one known does
-- (in_progress at finalizing_at, else at ended_at), so it lasts no time. Timestamps out of
-- order are clamped into [created_at, ended_at] so that the pieces stay consecutive.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

as_of as (

    select * from openai_batches.as_of

),

statuses as (

    select * from openai_batches.statuses

),

spans as (

    -- UTC wall-clock times from the instants' microseconds, as in active_batches_hourly
    select
        account,
        make_timestamp(epoch_us(created_at)) as created_utc,
        make_timestamp(epoch_us(in_progress_at)) as in_progress_utc,
        make_timestamp(epoch_us(finalizing_at)) as finalizing_utc,
        -- an end before the creation (bad data): never active, as in active_batches_hourly
        case
            when ended_at is not null
                then make_timestamp(epoch_us(greatest(created_at, ended_at)))
        end as ended_utc
    from batch_lifecycle

),

boundaries as (

    -- NULL = not reached yet (the batch is still in the status before). `least` and
    -- `greatest` skip NULLs on both databases: a batch without an end is not clamped by it.
    select
        account,
        created_utc,
        ended_utc,
        case
            when coalesce(in_progress_utc, finalizing_utc, ended_utc) is not null
                then least(
                    greatest(coalesce(in_progress_utc, finalizing_utc, ended_utc), created_utc),
                    ended_utc
                )
        end as in_progress_from_utc,
        -- the batch's own start of in_progress, clamped the same way, bounds finalizing below
        case
            when coalesce(finalizing_utc, ended_utc) is not null
                then least(
                    greatest(
                        coalesce(finalizing_utc, ended_utc),
                        coalesce(in_progress_utc, finalizing_utc, ended_utc),
                        created_utc
                    ),
                    ended_utc
                )
        end as finalizing_from_utc
    from spans

),

marks as (

    -- each boundary moves to the first hour mark at or after it
    select
        account,
        date_trunc('hour', created_utc) as created_hour_utc,
        date_trunc('hour', created_utc)
        + if(
            date_trunc('hour', created_utc) < created_utc,
            interval 1 hour,
            interval 0 hour
        ) as validating_hour_utc,
        date_trunc('hour', in_progress_from_utc)
        + if(
            date_trunc('hour', in_progress_from_utc) < in_progress_from_utc,
            interval 1 hour,
            interval 0 hour
        ) as in_progress_hour_utc,
        date_trunc('hour', finalizing_from_utc)
        + if(
            date_trunc('hour', finalizing_from_utc) < finalizing_from_utc,
            interval 1 hour,
            interval 0 hour
        ) as finalizing_hour_utc,
        date_trunc('hour', ended_utc)
        + if(
            date_trunc('hour', ended_utc) < ended_utc,
            interval 1 hour,
            interval 0 hour
        ) as end_hour_utc
    from boundaries

),

events as (

    -- per batch: 0 at the hour it was created in (where the account's spine may start),
    -- then +1 into a status and -1 out of the one before at each boundary. The status words
    -- are tied to the timestamps that start them; which of them are active, and so charted,
    -- is the statuses relation's to say (the spine below).
    select
        account,
        unnest([
            created_hour_utc,
            validating_hour_utc,
            in_progress_hour_utc,
            in_progress_hour_utc,
            finalizing_hour_utc,
            finalizing_hour_utc,
            end_hour_utc
        ]) as hour_utc,
        unnest([
            'validating',
            'validating',
            'validating',
            'in_progress',
            'in_progress',
            'finalizing',
            'finalizing'
        ]) as status,
        unnest([0, 1, -1, 1, -1, 1, -1]) as batches_change
    from marks

),

hourly_changes as (

    select
        account,
        status,
        hour_utc,
        sum(batches_change) as net_change
    from events
    where hour_utc is not null
    group by account, status, hour_utc

),

account_spines as (

    -- the same spine as active_batches_hourly: first batch's hour to the hour of "as of"
    select
        hourly_changes.account,
        min(hourly_changes.hour_utc) as first_hour_utc,
        date_trunc('hour', make_timestamp(epoch_us(max(as_of.as_of)))) as last_hour_utc
    from hourly_changes
    cross join as_of
    group by hourly_changes.account

),

hours as (

    -- every hour mark and every active status, zeros included (a stack needs each series)
    select
        account_spines.account,
        statuses.status,
        spine.hour_utc
    from account_spines
    cross join
        generate_series(
            account_spines.first_hour_utc,
            account_spines.last_hour_utc,
            interval 1 hour
        ) as spine (hour_utc)
    cross join statuses
    where statuses.is_active

),

changes as (

    select
        hours.account,
        hours.status,
        hours.hour_utc,
        coalesce(hourly_changes.net_change, 0) as net_change
    from hours
    left join hourly_changes
        on
            hours.account = hourly_changes.account
            and hours.status = hourly_changes.status
            and hours.hour_utc = hourly_changes.hour_utc

),

running_counts as (

    select
        account,
        status,
        hour_utc at time zone 'UTC' as hour,
        sum(net_change) over (
            partition by account, status
            order by hour_utc
            rows between unbounded preceding and current row
        ) as batches
    from changes

),

final as (

    select
        hour,
        account,
        status,
        cast(batches as bigint) as batches
    from running_counts

)

select * from final
