-- sqlfluff:rules:references.keywords:ignore_words:week
-- (`week` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- Terminal batches per UTC week of creation (weeks start on Monday) and endpoint: how
-- many ended which way and how many of their requests failed, as rates over the week
-- (sums over sums, defined in failure_rates).
with

failure_rates as (

    select * from openai_batches.failure_rates

),

final as (

    select
        period_start as week,
        account,
        endpoint,
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
    where grain = 'week'

)

select * from final
