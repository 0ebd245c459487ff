-- sqlfluff:rules:references.keywords:ignore_words:day
-- (`day` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- Failed requests per UTC creation day of their batch, account, endpoint, model and code.
with

request_errors as (

    select * from openai_batches.request_errors

),

final as (

    select
        created_day as day,
        account,
        endpoint,
        model,
        error_code,
        count(*) as requests,
        count(distinct batch_id) as batches,
        -- one message to show; the smallest, so the same data always shows the same one
        min(error_message) as example_message
    from request_errors
    group by created_day, account, endpoint, model, error_code

)

select * from final
