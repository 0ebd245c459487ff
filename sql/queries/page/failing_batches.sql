-- Failed or expired batches, and terminal ones with failed requests, created in the last
-- $days UTC days: the newest $limit, with their first error and metadata.
with

batch_facts as (

    select * from openai_batches.batch_facts

),

batch_errors as (

    select * from openai_batches.stg_batch_errors

),

batches as (

    select * from openai_batches.stg_batches

),

as_of as (

    select * from openai_batches.as_of

),

first_errors as (

    select
        account,
        batch_id,
        arg_min(message, error_position) as first_error_message
    from batch_errors
    group by account, batch_id

),

final as (

    select
        batch_facts.batch_id,
        batch_facts.account,
        batch_facts.status,
        batch_facts.endpoint,
        batch_facts.model,
        batch_facts.created_at,
        batch_facts.request_total,
        batch_facts.request_failed,
        batch_facts.first_error_code,
        first_errors.first_error_message,
        batches.metadata
    from batch_facts
    cross join as_of
    left join first_errors
        on
            batch_facts.account = first_errors.account
            and batch_facts.batch_id = first_errors.batch_id
    left join batches
        on
            batch_facts.account = batches.account
            and batch_facts.batch_id = batches.batch_id
    where
        batch_facts.created_day > as_of.as_of_day - $days
        and batch_facts.created_day <= as_of.as_of_day
        and batch_facts.is_terminal
        and (batch_facts.status in ('failed', 'expired') or batch_facts.request_failed > 0)

)

select * from final
order by created_at desc, account asc, batch_id asc
limit $limit
