-- sqlfluff:rules:references.keywords:ignore_words:position,value
-- (the chart reads `position` and `value`; DuckDB accepts them unquoted)
-- Spend per UTC creation day of the last $days by model: the $limit largest models, the
-- rest summed as "other models" (position $limit + 1).
with

daily as (

    select
        costs_daily.day,
        costs_daily.cost_usd as value,
        coalesce(cast(costs_daily.model as varchar), '(none)') as series
    from openai_batches.costs_daily as costs_daily
    cross join openai_batches.as_of as as_of
    where
        costs_daily.day > as_of.as_of_day - $days
        and costs_daily.day <= as_of.as_of_day

),

ranked as (

    select
        series,
        row_number() over (order by sum(value) desc nulls last, series) as position
    from daily
    group by series

),

labelled as (

    select
        daily.day,
        daily.value,
        case when ranked.position <= $limit then daily.series else 'other models' end as series,
        least(ranked.position, $limit + 1) as position
    from daily
    inner join ranked on daily.series = ranked.series

),

final as (

    select
        day,
        series,
        position,
        cast(sum(value) as double) as value
    from labelled
    group by day, series, position

)

select * from final
order by position, day
