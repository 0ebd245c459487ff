-- One row per batch: its lifecycle and durations, from the batch alone, defined once here.
-- `batch_facts` adds what other tables say about the batch (errors, cost, failed requests);
-- views that need none of it read this one and skip those joins (three hash joins on
-- 1,000,000 batches cost more than the rest of the view).
with

batches as (

    select * from openai_batches.stg_batches

),

statuses as (

    select * from openai_batches.statuses

),

lifecycle as (

    -- a status word the statuses relation does not know is open, neither active nor terminal
    select
        batches.*,
        coalesce(statuses.is_terminal, false) as is_terminal,
        coalesce(statuses.is_active, false) as is_active,
        batches.status = 'completed' as is_completed
    from batches
    left join statuses
        on batches.status = statuses.status

),

measured as (

    select
        lifecycle.*,
        -- the UTC date whatever the session's TimeZone (a bare cast would use the local
        -- zone): the date of the UTC wall-clock time rebuilt from the instant's microseconds
        -- (`at time zone 'UTC'` on PostgreSQL, see batchlens/dialects.py)
        cast(make_timestamp(epoch_us(lifecycle.created_at)) as date) as created_day,
        case
            when not lifecycle.is_active
                then least(
                    lifecycle.completed_at,
                    lifecycle.failed_at,
                    lifecycle.expired_at,
                    lifecycle.cancelling_at,
                    lifecycle.cancelled_at
                )
        end as ended_at,
        epoch(lifecycle.in_progress_at) - epoch(lifecycle.created_at) as queue_s,
        case
            when lifecycle.is_completed
                then epoch(lifecycle.completed_at) - epoch(lifecycle.in_progress_at)
        end as duration_s,
        case
            when lifecycle.is_completed
                then epoch(lifecycle.completed_at) - epoch(lifecycle.finalizing_at)
        end as finalize_s,
        case
            when lifecycle.is_completed
                then epoch(lifecycle.completed_at) - epoch(lifecycle.created_at)
        end as turnaround_s,
        coalesce(
            lifecycle.status = 'expired'
            or lifecycle.completed_at > lifecycle.expires_at,
            false
        ) as is_sla_breach,
        coalesce(
            lifecycle.is_terminal
            and lifecycle.request_total > 0
            and lifecycle.request_failed = lifecycle.request_total,
            false
        ) as is_all_failed,
        -- one batch's own shares of its requests (a rate over many batches is their sums'
        -- ratio, in failure_rates; never the mean of these)
        cast(lifecycle.request_failed as double)
        / nullif(lifecycle.request_total, 0) as request_failed_share,
        cast(lifecycle.request_completed as double)
        / nullif(lifecycle.request_total, 0) as request_completed_share,
        -- how far the batch got before it ended or now: the latest working status whose
        -- timestamp it has (an expired batch that never left validating says so)
        case
            when lifecycle.finalizing_at is not null then 'finalizing'
            when lifecycle.in_progress_at is not null then 'in_progress'
            else 'validating'
        end as furthest_status
    from lifecycle

),

final as (

    select
        batch_id,
        account,
        status,
        endpoint,
        model,
        completion_window,
        created_at,
        in_progress_at,
        finalizing_at,
        completed_at,
        failed_at,
        expired_at,
        cancelling_at,
        cancelled_at,
        expires_at,
        created_day,
        is_terminal,
        is_active,
        ended_at,
        queue_s,
        duration_s,
        finalize_s,
        turnaround_s,
        is_sla_breach,
        request_total,
        request_completed,
        request_failed,
        input_tokens,
        cached_tokens,
        output_tokens,
        reasoning_tokens,
        total_tokens,
        -- who the batch belongs to and where its files are (see docs/metrics.md)
        metadata,
        input_file_id,
        output_file_id,
        error_file_id,
        is_all_failed,
        request_failed_share,
        request_completed_share,
        furthest_status
    from measured

)

select * from final
