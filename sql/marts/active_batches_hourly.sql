-- sqlfluff:rules:references.keywords:ignore_words:hour
-- (`hour` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- How many batches were active at each UTC hour mark, per account, from the hour of the
-- account's first batch to the hour of "as of": the sum over the statuses of
-- active_batches_hourly_by_status, where the sweep that counts them is defined once (its
-- pieces of a batch's active span never overlap and cover it exactly).
with

by_status as (

    select * from openai_batches.active_batches_hourly_by_status

),

final as (

    select
        hour,
        account,
        cast(sum(batches) as bigint) as active
    from by_status
    group by hour, account

)

select * from final
