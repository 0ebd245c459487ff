-- The errors of a failed batch that has no error file (batch_errors: its `errors.data`,
-- such as an input file that failed validation): no request of it failed on its own, the
-- batch failed as a whole.
with

batch_errors as (

    select * from openai_batches.batch_errors

),

batches as (

    select * from openai_batches.stg_batches

),

final as (

    select
        batch_errors.account,
        batch_errors.status,
        batches.request_total,
        batch_errors.code,
        batch_errors.message,
        batch_errors.line
    from batch_errors
    inner join batches
        on
            batch_errors.account = batches.account
            and batch_errors.batch_id = batches.batch_id
    where
        batch_errors.batch_id = $batch_id
        and batches.status = 'failed'
        and batches.error_file_id is null

)

select * from final
order by account asc, line asc nulls last, code asc, message asc
