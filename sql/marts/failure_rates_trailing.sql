-- sqlfluff:rules:references.keywords:ignore_words:days
-- (`days` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- Terminal batches per account over the last N UTC days (the N days ending on the day of
-- "as of", that day included), for every N from 1 to the days since the account's first
-- batch: what the report's windows show. The counts and rates are defined in failure_rates.
with

failure_rates as (

    select * from openai_batches.failure_rates

),

final as (

    select
        days,
        period_start as first_day,
        account,
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
    where grain = 'trailing'

)

select * from final
