-- The instant every "now" in the models means: the start of the latest successful
-- extraction. It comes from the data, never from now(), so a view gives the same answer
-- whenever it is queried. Before any extraction is recorded (a database loaded by other
-- means), the latest lifecycle timestamp of any batch stands in for it.
with

extractions as (

    select * from openai_batches.stg_extractions

),

batches as (

    select * from openai_batches.stg_batches

),

latest_extraction as (

    select max(started_at) as extracted_at
    from extractions

),

latest_event as (

    select
        greatest(
            max(created_at),
            max(in_progress_at),
            max(finalizing_at),
            max(completed_at),
            max(failed_at),
            max(expired_at),
            max(cancelling_at),
            max(cancelled_at)
        ) as event_at
    from batches

),

measured as (

    select
        coalesce(
            latest_extraction.extracted_at,
            latest_event.event_at
        ) as as_of,
        case
            when latest_extraction.extracted_at is not null then 'extraction'
            when latest_event.event_at is not null then 'latest_batch_timestamp'
        end as as_of_source
    from latest_extraction
    cross join latest_event

),

final as (

    -- the UTC date of "as of", whatever the session's TimeZone (as batch_lifecycle's
    -- created_day): the last day of every window of UTC days, and "today" for the alerts
    select
        as_of,
        as_of_source,
        cast(make_timestamp(epoch_us(as_of)) as date) as as_of_day
    from measured

)

select * from final
