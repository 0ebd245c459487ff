-- sqlfluff:rules:references.keywords:ignore_words:model
-- (`model` is the column name metrics.md promises, as in every view)
-- One row per failed request: a line of a batch's error file (or an output line with an
-- HTTP error status), with its error code and the batch it belongs to.
with

batch_requests as (

    select * from openai_batches.stg_batch_requests

),

batches as (

    select * from openai_batches.stg_batches

),

failed_requests as (

    select * from batch_requests
    where kind = 'error' or status_code >= 400

),

coded as (

    select
        failed_requests.*,
        batches.status as batch_status,
        batches.endpoint,
        batches.created_at as batch_created_at,
        -- the UTC date of the batch's creation, as batch_facts.created_day
        cast(make_timestamp(epoch_us(batches.created_at)) as date) as batch_created_day,
        -- the body's code, else the line's; HTTP errors without a code by their status
        coalesce(
            failed_requests.error_code,
            'http_' || cast(failed_requests.status_code as varchar)
        ) as request_error_code,
        coalesce(failed_requests.model, batches.model) as request_model
    from failed_requests
    left join batches
        on
            failed_requests.account = batches.account
            and failed_requests.batch_id = batches.batch_id

),

final as (

    select
        batch_id,
        account,
        custom_id,
        status_code,
        request_error_code as error_code,
        error_type,
        error_message,
        batch_status,
        endpoint,
        request_model as model,
        batch_created_at,
        batch_created_day as created_day
    from coded

)

select * from final
