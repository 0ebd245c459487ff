-- sqlfluff:rules:references.keywords:ignore_words:days
-- (`days` is the report's JSON key; DuckDB accepts it unquoted)
-- Spend per window ($windows: days), account and model: sums of costs_daily over the UTC
-- days of each window, for the days with priced or unpriced batches.
with

windows as (

    select unnest($windows) as days

),

as_of as (

    select * from openai_batches.as_of

),

daily as (

    select * from openai_batches.costs_daily
    where priced_batches + unpriced_batches > 0

),

final as (

    select
        windows.days,
        daily.account,
        daily.model,
        cast(sum(daily.priced_batches) as bigint) as priced_batches,
        cast(sum(daily.unpriced_batches) as bigint) as unpriced_batches,
        sum(daily.cost_usd) as cost_usd,
        sum(daily.saved_usd) as saved_usd
    from daily
    cross join windows
    cross join as_of
    where
        daily.day > as_of.as_of_day - windows.days
        and daily.day <= as_of.as_of_day
    group by windows.days, daily.account, daily.model

)

select * from final
order by days asc, account asc, cost_usd desc nulls last, model asc
