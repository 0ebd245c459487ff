-- sqlfluff:rules:references.keywords:ignore_words:day
-- (`day` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- Terminal batches per UTC creation day: how many ended which way, and how many of their
-- requests failed (a `completed` batch can have every request failed).
with

batch_facts as (

    select * from openai_batches.batch_facts

),

terminal_batches as (

    select * from batch_facts
    where is_terminal

),

counts as (

    select
        account,
        endpoint,
        model,
        created_day as day,
        count(*) as terminal,
        count(*) filter (where status = 'completed') as completed,
        count(*) filter (where status = 'failed') as failed,
        count(*) filter (where status = 'expired') as expired,
        count(*) filter (where status = 'cancelled') as cancelled,
        coalesce(sum(request_total), 0) as request_total,
        coalesce(sum(request_failed), 0) as request_failed
    from terminal_batches
    group by created_day, account, endpoint, model

),

rates as (

    select
        *,
        cast(failed as double) / nullif(terminal, 0) as failure_rate,
        cast(expired as double) / nullif(terminal, 0) as expired_rate,
        cast(cancelled as double) / nullif(terminal, 0) as cancelled_rate,
        cast(request_failed as double) / nullif(request_total, 0) as request_failure_rate
    from counts

),

final as (

    select
        day,
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
        -- sums of BIGINT are HUGEINT in DuckDB: back to BIGINT for every client
        cast(request_total as bigint) as request_total,
        cast(request_failed as bigint) as request_failed,
        request_failure_rate
    from rates

)

select * from final
