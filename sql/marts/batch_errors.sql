-- One row per entry of a batch's `errors.data`, with the batch's status and creation time.
with

batch_errors as (

    select * from openai_batches.stg_batch_errors

),

batches as (

    select * from openai_batches.stg_batches

),

final as (

    select
        batch_errors.batch_id,
        batch_errors.account,
        batches.created_at,
        batches.status,
        batch_errors.code,
        batch_errors.message,
        batch_errors.param,
        batch_errors.line
    from batch_errors
    left join batches
        on
            batch_errors.account = batches.account
            and batch_errors.batch_id = batches.batch_id

)

select * from final
