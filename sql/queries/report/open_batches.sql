-- Every open batch; what needs attention first: stalled (`is_long_finalizing`: only
-- finalizing has a threshold today), then overdue, then the oldest.
with

open_batches as (

    select * from openai_batches.open_batches

),

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

final as (

    select
        open_batches.batch_id,
        open_batches.account,
        open_batches.status,
        batch_lifecycle.endpoint,
        batch_lifecycle.model,
        open_batches.created_at,
        open_batches.status_since,
        open_batches.hours_in_status,
        open_batches.expires_at,
        open_batches.is_overdue,
        open_batches.is_stalled as is_long_finalizing
    from open_batches
    inner join batch_lifecycle
        on
            open_batches.account = batch_lifecycle.account
            and open_batches.batch_id = batch_lifecycle.batch_id

)

select * from final
order by
    is_long_finalizing desc,
    is_overdue desc,
    created_at asc,
    batch_id asc
