-- All accounts together, as the daily charts: a sum of counts per hour and status, with
-- the status's label and colour, in the lifecycle's order (the stack's order, bottom up).
with

hourly as (

    select * from openai_batches.active_batches_hourly_by_status

),

statuses as (

    select * from openai_batches.statuses

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        hourly.hour,
        hourly.status,
        statuses.label,
        statuses.colour,
        statuses.lifecycle_order,
        cast(sum(hourly.batches) as bigint) as batches
    from hourly
    inner join statuses
        on hourly.status = statuses.status
    cross join as_of
    where
        cast(hourly.hour at time zone 'UTC' as date) > as_of.as_of_day - $days
        and cast(hourly.hour at time zone 'UTC' as date) <= as_of.as_of_day
    group by
        hourly.hour,
        hourly.status,
        statuses.label,
        statuses.colour,
        statuses.lifecycle_order

)

select
    hour,
    status,
    label,
    colour,
    batches
from final
order by lifecycle_order, hour
