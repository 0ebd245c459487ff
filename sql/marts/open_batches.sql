-- Every batch not yet terminal, with how long it has been in its current status as of the
-- latest extraction: where batches stuck in `finalizing` for days show up.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

as_of as (

    select * from openai_batches.as_of

),

statuses as (

    select * from openai_batches.statuses

),

open_batches as (

    select
        batch_id,
        account,
        status,
        created_at,
        expires_at,
        -- a status whose timestamp is missing counts from creation, so it is never NULL
        coalesce(
            case status
                when 'in_progress' then in_progress_at
                when 'finalizing' then finalizing_at
                when 'cancelling' then cancelling_at
            end,
            created_at
        ) as status_since
    from batch_lifecycle
    where not is_terminal

),

measured as (

    select
        open_batches.*,
        statuses.stuck_after_hours,
        (epoch(as_of.as_of) - epoch(open_batches.status_since)) / 3600 as hours_in_status,
        coalesce(as_of.as_of > open_batches.expires_at, false) as is_overdue
    from open_batches
    cross join as_of
    left join statuses
        on open_batches.status = statuses.status

),

flagged as (

    select
        *,
        coalesce(hours_in_status > stuck_after_hours, false) as is_stalled
    from measured

),

final as (

    select
        batch_id,
        account,
        status,
        created_at,
        status_since,
        hours_in_status,
        expires_at,
        is_overdue,
        is_stalled,
        is_overdue or is_stalled as is_stuck
    from flagged

)

select * from final
