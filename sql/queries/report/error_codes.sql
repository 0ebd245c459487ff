-- Batch error codes of the batches created in the last $days UTC days, the $limit most
-- frequent first.
with

batch_errors as (

    select * from openai_batches.batch_errors

),

as_of as (

    select * from openai_batches.as_of

),

in_window as (

    select batch_errors.*
    from batch_errors
    cross join as_of
    where
        cast(batch_errors.created_at at time zone 'UTC' as date) > as_of.as_of_day - $days
        and cast(batch_errors.created_at at time zone 'UTC' as date) <= as_of.as_of_day

),

final as (

    select
        code,
        count(*) as entries,
        count(distinct account || '/' || batch_id) as batches,
        arg_max(message, created_at) as example_message
    from in_window
    group by code

)

select * from final
order by entries desc, code asc nulls last
limit $limit
