-- The open batches as `open_batches` sees them, with the hours left before expires_at.
with

open_batches as (

    select * from openai_batches.open_batches

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        open_batches.batch_id,
        open_batches.account,
        open_batches.status,
        open_batches.status_since,
        open_batches.hours_in_status,
        open_batches.expires_at,
        open_batches.is_overdue,
        (epoch(open_batches.expires_at) - epoch(as_of.as_of)) / 3600 as hours_to_expiry
    from open_batches
    cross join as_of

)

select * from final
order by account asc, hours_in_status desc, batch_id asc
