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

final as (

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

)

select * from final
