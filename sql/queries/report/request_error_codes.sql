-- Request error codes of the last $days UTC days, the $limit most frequent first. A batch
-- has one creation day, endpoint and model: summing `batches` over them is exact.
with

daily as (

    select * from openai_batches.request_error_codes_daily

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        daily.error_code,
        cast(sum(daily.requests) as bigint) as requests,
        cast(sum(daily.batches) as bigint) as batches,
        min(daily.example_message) as example_message
    from daily
    cross join as_of
    where
        daily.day > as_of.as_of_day - $days
        and daily.day <= as_of.as_of_day
    group by daily.error_code

)

select * from final
order by requests desc, error_code asc nulls last
limit $limit
