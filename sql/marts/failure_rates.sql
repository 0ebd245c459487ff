-- sqlfluff:rules:references.keywords:ignore_words:days,model
-- (`days` and `model` are the column names metrics.md promises; DuckDB accepts them unquoted)
-- How terminal batches ended, at every grain a reader asks for, with each rate defined
-- once (the `rates` step below). The views people read select one grain from here:
-- failure_rates_daily, failure_rates_weekly, failure_rates_by_model, failure_rates_trailing.
-- A rate over several days is a sum of counts over a sum of counts, never an average of
-- daily rates, which would weigh a quiet day like a busy one.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

as_of as (

    select * from openai_batches.as_of

),

extractions as (

    select * from openai_batches.stg_extractions

),

all_days as (

    -- one pass over the batches: every creation day and group, with its terminal counts;
    -- the accounts and their first day come from here too, not from more passes
    select
        account,
        endpoint,
        model,
        created_day as period_start,
        count(*) filter (where is_terminal) as terminal,
        count(*) filter (where is_terminal and status = 'completed') as completed,
        count(*) filter (where is_terminal and status = 'failed') as failed,
        count(*) filter (where is_terminal and status = 'expired') as expired,
        count(*) filter (where is_terminal and status = 'cancelled') as cancelled,
        coalesce(sum(request_total) filter (where is_terminal), 0) as request_total,
        coalesce(sum(request_failed) filter (where is_terminal), 0) as request_failed
    from batch_lifecycle
    group by created_day, account, endpoint, model

),

daily_counts as (

    select * from all_days
    where terminal > 0

),

weekly_counts as (

    -- weeks start on Monday (ISO), UTC
    select
        account,
        endpoint,
        cast(date_trunc('week', period_start) as date) as period_start,
        sum(terminal) as terminal,
        sum(completed) as completed,
        sum(failed) as failed,
        sum(expired) as expired,
        sum(cancelled) as cancelled,
        sum(request_total) as request_total,
        sum(request_failed) as request_failed
    from daily_counts
    group by cast(date_trunc('week', period_start) as date), account, endpoint

),

history_counts as (

    select
        account,
        endpoint,
        model,
        sum(terminal) as terminal,
        sum(completed) as completed,
        sum(failed) as failed,
        sum(expired) as expired,
        sum(cancelled) as cancelled,
        sum(request_total) as request_total,
        sum(request_failed) as request_failed
    from daily_counts
    group by account, endpoint, model

),

as_of_day as (

    -- the UTC date of "as of", whatever the session's TimeZone (see batch_lifecycle)
    select cast(make_timestamp(epoch_us(max(as_of))) as date) as as_of_day
    from as_of

),

accounts as (

    select account from all_days
    union
    select account from extractions

),

account_spans as (

    -- trailing windows from 1 day to the days since the account's first batch (at least 1)
    select
        accounts.account,
        max(as_of_day.as_of_day) as as_of_day,
        greatest(
            1,
            coalesce(max(as_of_day.as_of_day) - min(all_days.period_start) + 1, 1)
        ) as longest_days
    from accounts
    cross join as_of_day
    left join all_days
        on accounts.account = all_days.account
    group by accounts.account

),

account_days as (

    select
        account,
        period_start,
        sum(terminal) as terminal,
        sum(completed) as completed,
        sum(failed) as failed,
        sum(expired) as expired,
        sum(cancelled) as cancelled,
        sum(request_total) as request_total,
        sum(request_failed) as request_failed
    from daily_counts
    group by account, period_start

),

window_days as (

    -- window of N days = the N UTC days ending on the day of "as of", that day included
    select
        account_spans.account,
        cast(spine.days as integer) as days,
        account_spans.as_of_day - cast(spine.days as integer) + 1 as period_start
    from account_spans
    cross join generate_series(1, account_spans.longest_days) as spine (days)

),

trailing_counts as (

    -- a running sum from the day of "as of" back: window N adds day N to window N - 1
    select
        window_days.account,
        window_days.days,
        window_days.period_start,
        sum(coalesce(account_days.terminal, 0)) over running as terminal,
        sum(coalesce(account_days.completed, 0)) over running as completed,
        sum(coalesce(account_days.failed, 0)) over running as failed,
        sum(coalesce(account_days.expired, 0)) over running as expired,
        sum(coalesce(account_days.cancelled, 0)) over running as cancelled,
        sum(coalesce(account_days.request_total, 0)) over running as request_total,
        sum(coalesce(account_days.request_failed, 0)) over running as request_failed
    from window_days
    left join account_days
        on
            window_days.account = account_days.account
            and window_days.period_start = account_days.period_start
    window running as (
        partition by window_days.account
        order by window_days.days
        rows between unbounded preceding and current row
    )

),

counts as (

    select
        'day' as grain,
        period_start,
        cast(null as integer) as days,
        account,
        endpoint,
        model,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from daily_counts
    union all
    select
        'week' as grain,
        period_start,
        cast(null as integer) as days,
        account,
        endpoint,
        cast(null as varchar) as model,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from weekly_counts
    union all
    select
        'history' as grain,
        cast(null as date) as period_start,
        cast(null as integer) as days,
        account,
        endpoint,
        model,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from history_counts
    union all
    select
        'trailing' as grain,
        period_start,
        days,
        account,
        cast(null as varchar) as endpoint,
        cast(null as varchar) as model,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from trailing_counts

),

rates as (

    -- the one definition of each rate; NULL when there is nothing to divide by
    select
        *,
        cast(failed as double) / nullif(terminal, 0) as failure_rate,
        cast(expired as double) / nullif(terminal, 0) as expired_rate,
        cast(cancelled as double) / nullif(terminal, 0) as cancelled_rate,
        cast(request_failed as double) / nullif(request_total, 0) as request_failure_rate
    from counts

),

final as (

    -- sums of BIGINT are HUGEINT in DuckDB: back to BIGINT for every client
    select
        grain,
        period_start,
        cast(days as integer) as days,
        account,
        endpoint,
        model,
        cast(terminal as bigint) as terminal,
        cast(completed as bigint) as completed,
        cast(failed as bigint) as failed,
        cast(expired as bigint) as expired,
        cast(cancelled as bigint) as cancelled,
        failure_rate,
        expired_rate,
        cancelled_rate,
        cast(request_total as bigint) as request_total,
        cast(request_failed as bigint) as request_failed,
        request_failure_rate
    from rates

)

select * from final
