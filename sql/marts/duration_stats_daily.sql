-- sqlfluff:rules:references.keywords:ignore_words:day
-- (`day` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- Completed batches per UTC creation day: how long they ran, queued and took end to end.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

completed_batches as (

    select * from batch_lifecycle
    where status = 'completed'

),

daily_stats as (

    select
        account,
        endpoint,
        model,
        created_day as day,
        count(*) as batches,
        quantile_cont(duration_s, 0.5) as duration_p50_s,
        quantile_cont(duration_s, 0.9) as duration_p90_s,
        quantile_cont(duration_s, 0.99) as duration_p99_s,
        avg(duration_s) as duration_mean_s,
        max(duration_s) as duration_max_s,
        quantile_cont(queue_s, 0.5) as queue_p50_s,
        quantile_cont(turnaround_s, 0.5) as turnaround_p50_s
    from completed_batches
    group by created_day, account, endpoint, model

),

final as (

    select
        day,
        account,
        endpoint,
        model,
        batches,
        duration_p50_s,
        duration_p90_s,
        duration_p99_s,
        duration_mean_s,
        duration_max_s,
        queue_p50_s,
        turnaround_p50_s
    from daily_stats

)

select * from final
