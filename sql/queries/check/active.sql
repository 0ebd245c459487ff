-- Open batches per account and status, and the age of the oldest, as of the extraction.
with

active_batches as (

    select * from openai_batches.active_batches

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        active_batches.account,
        active_batches.status,
        active_batches.batches,
        epoch(as_of.as_of) - epoch(active_batches.oldest_created_at) as oldest_age_s
    from active_batches
    cross join as_of

)

select * from final
order by account, status
