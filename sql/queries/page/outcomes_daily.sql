-- sqlfluff:rules:references.keywords:ignore_words:day
-- (the chart reads `day`; DuckDB accepts it unquoted)
-- All accounts, endpoints and models of each UTC creation day of the last $days together:
-- failure_rates' `day_total` grain, whose counts and rate are the mart's own.
with

failure_rates as (

    select * from openai_batches.failure_rates

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        failure_rates.period_start as day,
        failure_rates.terminal,
        failure_rates.completed,
        failure_rates.failed,
        failure_rates.expired,
        failure_rates.cancelled,
        failure_rates.failure_rate
    from failure_rates
    cross join as_of
    where
        failure_rates.grain = 'day_total'
        and failure_rates.period_start > as_of.as_of_day - $days
        and failure_rates.period_start <= as_of.as_of_day

)

select * from final
order by day
