-- The open batches the `stuck` rule names: `open_batches.is_stalled` (longer in their
-- status than its `statuses.stuck_after_hours`). $stuck_hours, when not NULL, replaces the
-- threshold of every status that has one (`--stuck-hours`, `stuck_hours` in [check]);
-- a status without a threshold never stalls, whatever it says.
with

open_batches as (

    select * from openai_batches.open_batches

),

statuses as (

    select * from openai_batches.statuses

),

thresholds as (

    select
        open_batches.*,
        coalesce(cast($stuck_hours as double), statuses.stuck_after_hours)
            as stuck_after_hours
    from open_batches
    inner join statuses
        on open_batches.status = statuses.status
    where statuses.stuck_after_hours is not null

),

final as (

    select
        batch_id,
        account,
        status,
        hours_in_status,
        stuck_after_hours
    from thresholds
    where
        case
            when $stuck_hours is null then is_stalled
            else hours_in_status > stuck_after_hours
        end

)

select * from final
order by account asc, hours_in_status desc, batch_id asc
