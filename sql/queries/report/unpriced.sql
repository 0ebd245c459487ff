-- The unpriced models of the last $days UTC days, with their latest batch as an example.
with

batch_costs as (

    select * from openai_batches.batch_costs

),

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        batch_costs.account,
        batch_costs.model,
        count(*) as batches,
        arg_max(batch_costs.batch_id, batch_lifecycle.created_at) as latest_batch_id
    from batch_costs
    inner join batch_lifecycle
        on
            batch_costs.account = batch_lifecycle.account
            and batch_costs.batch_id = batch_lifecycle.batch_id
    cross join as_of
    where
        not batch_costs.is_priced
        and batch_costs.created_day > as_of.as_of_day - $days
        and batch_costs.created_day <= as_of.as_of_day
    group by batch_costs.account, batch_costs.model

)

select * from final
order by account asc, batches desc, model asc
