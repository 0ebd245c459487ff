-- sqlfluff:rules:references.keywords:ignore_words:position,value
-- (the chart reads `position` and `value`; DuckDB accepts them unquoted)
-- Failed requests per UTC creation day of the last $days by error code: the $limit
-- largest codes, the rest summed as "other codes" (position $limit + 1).
with

daily as (

    select
        request_error_codes_daily.day,
        request_error_codes_daily.requests as value,
        coalesce(cast(request_error_codes_daily.error_code as varchar), '(none)') as series
    from openai_batches.request_error_codes_daily as request_error_codes_daily
    cross join openai_batches.as_of as as_of
    where
        request_error_codes_daily.day > as_of.as_of_day - $days
        and request_error_codes_daily.day <= as_of.as_of_day

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
        case when ranked.position <= $limit then daily.series else 'other codes' end as series,
        least(ranked.position, $limit + 1) as position
    from daily
    inner join ranked on daily.series = ranked.series

),

final as (

    select
        day,
        series,
        position,
        cast(sum(value) as bigint) as value
    from labelled
    group by day, series, position

)

select * from final
order by position, day
