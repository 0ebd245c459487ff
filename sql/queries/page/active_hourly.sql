-- Active batches at each UTC hour mark of the last $days UTC days, per account.
with

hourly as (

    select * from openai_batches.active_batches_hourly

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        hourly.hour,
        hourly.account,
        hourly.active
    from hourly
    cross join as_of
    where
        cast(hourly.hour at time zone 'UTC' as date) > as_of.as_of_day - $days
        and cast(hourly.hour at time zone 'UTC' as date) <= as_of.as_of_day

)

select * from final
order by account, hour
