-- The batches created in the last $days UTC days in which every request failed.
with

batch_facts as (

    select * from openai_batches.batch_facts

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        batch_facts.batch_id,
        batch_facts.account,
        batch_facts.status,
        batch_facts.created_at,
        batch_facts.request_total,
        batch_facts.request_error_rows,
        batch_facts.top_request_error_code
    from batch_facts
    cross join as_of
    where
        batch_facts.is_all_failed
        and batch_facts.created_day > as_of.as_of_day - $days
        and batch_facts.created_day <= as_of.as_of_day

)

select * from final
order by created_at desc, batch_id asc
