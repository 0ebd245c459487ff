-- The daily p50 duration of the $limit busiest account, endpoint and model groups of the
-- last $days UTC days.
with

daily as (

    select duration_stats_daily.*
    from openai_batches.duration_stats_daily as duration_stats_daily
    cross join openai_batches.as_of as as_of
    where
        duration_stats_daily.day > as_of.as_of_day - $days
        and duration_stats_daily.day <= as_of.as_of_day

),

busiest as (

    select
        account,
        endpoint,
        model,
        cast(sum(batches) as bigint) as batches
    from daily
    group by account, endpoint, model
    order by batches desc, account asc, endpoint asc nulls last, model asc nulls last
    limit $limit

),

final as (

    select
        daily.day,
        daily.account,
        daily.endpoint,
        daily.model,
        daily.duration_p50_s,
        busiest.batches
    from daily
    inner join busiest
        on
            daily.account = busiest.account
            and daily.endpoint is not distinct from busiest.endpoint
            and daily.model is not distinct from busiest.model
    where daily.duration_p50_s is not null

)

select
    day,
    account,
    endpoint,
    model,
    duration_p50_s
from final
order by batches desc, account asc, endpoint asc nulls last, model asc nulls last, day asc
