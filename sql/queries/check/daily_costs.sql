-- What each account spent on the UTC day of "as of": "today" as the latest extraction saw it.
with

costs_daily as (

    select * from openai_batches.costs_daily

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        costs_daily.account,
        coalesce(sum(costs_daily.cost_usd), 0) as cost_usd
    from costs_daily
    inner join as_of
        on costs_daily.day = as_of.as_of_day
    group by costs_daily.account

)

select * from final
order by account
