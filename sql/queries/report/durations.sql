-- Completed batches created in the last $days UTC days. Quantiles cannot be added up from
-- daily quantiles: they come from the batches themselves.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        batch_lifecycle.account,
        batch_lifecycle.endpoint,
        batch_lifecycle.model,
        count(*) as batches,
        quantile_cont(batch_lifecycle.duration_s, 0.5) as duration_p50_s,
        quantile_cont(batch_lifecycle.duration_s, 0.9) as duration_p90_s
    from batch_lifecycle
    cross join as_of
    where
        batch_lifecycle.status = 'completed'
        and batch_lifecycle.created_day > as_of.as_of_day - $days
        and batch_lifecycle.created_day <= as_of.as_of_day
    group by batch_lifecycle.account, batch_lifecycle.endpoint, batch_lifecycle.model

)

select * from final
order by batches desc, account asc, endpoint asc, model asc nulls last
