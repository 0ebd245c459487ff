-- sqlfluff:rules:references.keywords:ignore_words:account,days,model
-- (`account`, `days` and `model` are column names metrics.md promises; DuckDB accepts them
-- unquoted)
-- How terminal batches ended, at every grain a reader asks for, with each rate defined
-- once (the `rates` step below). The views people read select one grain from here:
-- failure_rates_daily, failure_rates_weekly, failure_rates_by_model, failure_rates_trailing;
-- the report, the page and `batchlens check` select the others (day_total, label, since).
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

outcomes as (

    -- each batch once, a 1 in the column of how it ended (all 0 while it is open): every
    -- grain below adds these up, so no grain spells the outcomes again
    select
        account,
        endpoint,
        model,
        created_day,
        created_at,
        metadata,
        cast(is_terminal as integer) as terminal,
        cast(is_terminal and status = 'completed' as integer) as completed,
        cast(is_terminal and status = 'failed' as integer) as failed,
        cast(is_terminal and status = 'expired' as integer) as expired,
        cast(is_terminal and status = 'cancelled' as integer) as cancelled,
        case when is_terminal then coalesce(request_total, 0) else 0 end as request_total,
        case when is_terminal then coalesce(request_failed, 0) else 0 end as request_failed
    from batch_lifecycle

),

all_days as (

    -- one pass over the batches: every creation day and group, with its terminal counts;
    -- the accounts and their first day come from here too, not from more passes
    select
        account,
        endpoint,
        model,
        created_day as period_start,
        sum(terminal) as terminal,
        sum(completed) as completed,
        sum(failed) as failed,
        sum(expired) as expired,
        sum(cancelled) as cancelled,
        sum(request_total) as request_total,
        sum(request_failed) as request_failed
    from outcomes
    group by created_day, account, endpoint, model

),

daily_counts as (

    select * from all_days
    where terminal > 0

),

daily_totals as (

    -- every account, endpoint and model of a creation day together (the page's chart)
    select
        period_start,
        sum(terminal) as terminal,
        sum(completed) as completed,
        sum(failed) as failed,
        sum(expired) as expired,
        sum(cancelled) as cancelled,
        sum(request_total) as request_total,
        sum(request_failed) as request_failed
    from daily_counts
    group by period_start

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

accounts as (

    select account from all_days
    union
    select account from extractions

),

account_spans as (

    -- trailing windows from 1 day to the days since the account's first batch (at least 1)
    select
        accounts.account,
        max(as_of.as_of_day) as as_of_day,
        greatest(
            1,
            coalesce(max(as_of.as_of_day) - min(all_days.period_start) + 1, 1)
        ) as longest_days
    from accounts
    cross join as_of
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

account_instants as (

    select
        account,
        created_at,
        min(created_day) as created_day,
        sum(terminal) as terminal,
        sum(completed) as completed,
        sum(failed) as failed,
        sum(expired) as expired,
        sum(cancelled) as cancelled,
        sum(request_total) as request_total,
        sum(request_failed) as request_failed
    from outcomes
    where terminal = 1
    group by account, created_at

),

since_counts as (

    -- a running sum from the newest creation instant back: the row of an instant counts
    -- the account's terminal batches created at or after it, so a window of any length
    -- back from "as of" is the row of the earliest instant in it (`check --window-hours`)
    select
        account,
        created_day as period_start,
        created_at as first_created_at,
        sum(terminal) over newer as terminal,
        sum(completed) over newer as completed,
        sum(failed) over newer as failed,
        sum(expired) over newer as expired,
        sum(cancelled) over newer as cancelled,
        sum(request_total) over newer as request_total,
        sum(request_failed) over newer as request_failed
    from account_instants
    window newer as (
        partition by account
        order by created_at desc
        rows between unbounded preceding and current row
    )

),

label_keys as (

    -- every key of any batch's metadata object (but those DuckDB would read as a JSON
    -- path, which `--by` refuses), and NULL: the group of every batch, whatever its labels
    select distinct labels.key as label_key
    from outcomes,
        json_each(
            case
                when cast(outcomes.metadata as varchar) like '{%'
                    then cast(outcomes.metadata as json)
            end
        ) as labels
    where labels.key not like '$%' and labels.key not like '/%'
    union all
    select cast(null as varchar) as label_key

),

label_days as (

    -- terminal batches of every account per key, its value (NULL: without the key) and
    -- creation day, up to the day of "as of"
    select
        label_keys.label_key,
        outcomes.created_day as period_start,
        outcomes.metadata ->> label_keys.label_key as label_value,
        sum(outcomes.terminal) as terminal,
        sum(outcomes.completed) as completed,
        sum(outcomes.failed) as failed,
        sum(outcomes.expired) as expired,
        sum(outcomes.cancelled) as cancelled,
        sum(outcomes.request_total) as request_total,
        sum(outcomes.request_failed) as request_failed
    from outcomes
    cross join label_keys
    cross join as_of
    where outcomes.terminal = 1 and outcomes.created_day <= as_of.as_of_day
    group by
        label_keys.label_key,
        outcomes.metadata ->> label_keys.label_key,
        outcomes.created_day

),

label_counts as (

    -- a running sum from the day of "as of" back: the window of the last N days is the
    -- row of the earliest day in it (`report --by metadata.KEY`)
    select
        label_key,
        label_value,
        period_start,
        sum(terminal) over later as terminal,
        sum(completed) over later as completed,
        sum(failed) over later as failed,
        sum(expired) over later as expired,
        sum(cancelled) over later as cancelled,
        sum(request_total) over later as request_total,
        sum(request_failed) over later as request_failed
    from label_days
    window later as (
        partition by label_key, label_value
        order by period_start desc
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
        cast(null as timestamptz) as first_created_at,
        cast(null as varchar) as label_key,
        cast(null as varchar) as label_value,
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
        'day_total' as grain,
        period_start,
        cast(null as integer) as days,
        cast(null as varchar) as account,
        cast(null as varchar) as endpoint,
        cast(null as varchar) as model,
        cast(null as timestamptz) as first_created_at,
        cast(null as varchar) as label_key,
        cast(null as varchar) as label_value,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from daily_totals
    union all
    select
        'week' as grain,
        period_start,
        cast(null as integer) as days,
        account,
        endpoint,
        cast(null as varchar) as model,
        cast(null as timestamptz) as first_created_at,
        cast(null as varchar) as label_key,
        cast(null as varchar) as label_value,
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
        cast(null as timestamptz) as first_created_at,
        cast(null as varchar) as label_key,
        cast(null as varchar) as label_value,
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
        cast(null as timestamptz) as first_created_at,
        cast(null as varchar) as label_key,
        cast(null as varchar) as label_value,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from trailing_counts
    union all
    select
        'since' as grain,
        period_start,
        cast(null as integer) as days,
        account,
        cast(null as varchar) as endpoint,
        cast(null as varchar) as model,
        first_created_at,
        cast(null as varchar) as label_key,
        cast(null as varchar) as label_value,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from since_counts
    union all
    select
        'label' as grain,
        period_start,
        cast(null as integer) as days,
        cast(null as varchar) as account,
        cast(null as varchar) as endpoint,
        cast(null as varchar) as model,
        cast(null as timestamptz) as first_created_at,
        label_key,
        label_value,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        request_total,
        request_failed
    from label_counts

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
        request_failure_rate,
        first_created_at,
        label_key,
        label_value
    from rates

)

select * from final
