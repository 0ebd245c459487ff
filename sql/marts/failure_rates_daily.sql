-- sqlfluff:rules:references.keywords:ignore_words:day
-- (`day` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- Terminal batches per UTC creation day: how many ended which way, and how many of their
-- requests failed (a `completed` batch can have every request failed). The counts and
-- rates are defined in failure_rates.
with

failure_rates as (

    select * from openai_batches.failure_rates

),

final as (

    select
        period_start as day,
        account,
        endpoint,
        model,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        failure_rate,
        expired_rate,
        cancelled_rate,
        request_total,
        request_failed,
        request_failure_rate
    from failure_rates
    where grain = 'day'

)

select * from final
