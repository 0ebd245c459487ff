-- One row per batch: its lifecycle, durations, counts and errors, defined once here.
with

batches as (

    select * from openai_batches.stg_batches

),

batch_errors as (

    select * from openai_batches.stg_batch_errors

),

batch_costs as (

    select * from openai_batches.batch_costs

),

request_errors as (

    select * from openai_batches.request_errors

),

statuses as (

    select * from openai_batches.statuses

),

errors_per_batch as (

    select
        account,
        batch_id,
        count(*) as error_count,
        -- skips entries without a code (array_agg on PostgreSQL: batchlens/dialects.py)
        arg_min(code, error_position) as first_error_code
    from batch_errors
    group by account, batch_id

),

request_error_codes as (

    select
        account,
        batch_id,
        error_code,
        count(*) as requests
    from request_errors
    group by account, batch_id, error_code

),

request_errors_per_batch as (

    select
        account,
        batch_id,
        -- a sum of BIGINT is HUGEINT in DuckDB: back to BIGINT for every client
        cast(sum(requests) as bigint) as request_error_rows,
        -- the most frequent code; ties go to the smaller code, so the answer never flips
        (array_agg(error_code order by requests desc, error_code asc))[1]
            as top_request_error_code
    from request_error_codes
    group by account, batch_id

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
        errors_per_batch.first_error_code,
        batch_costs.cost_usd,
        request_errors_per_batch.top_request_error_code,
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
        coalesce(errors_per_batch.error_count, 0) as error_count,
        coalesce(request_errors_per_batch.request_error_rows, 0) as request_error_rows,
        coalesce(
            lifecycle.is_terminal
            and lifecycle.request_total > 0
            and lifecycle.request_failed = lifecycle.request_total,
            false
        ) as is_all_failed
    from lifecycle
    left join errors_per_batch
        on
            lifecycle.account = errors_per_batch.account
            and lifecycle.batch_id = errors_per_batch.batch_id
    left join batch_costs
        on
            lifecycle.account = batch_costs.account
            and lifecycle.batch_id = batch_costs.batch_id
    left join request_errors_per_batch
        on
            lifecycle.account = request_errors_per_batch.account
            and lifecycle.batch_id = request_errors_per_batch.batch_id

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
        error_count,
        first_error_code,
        cost_usd,
        -- who the batch belongs to and where its files are (see docs/metrics.md)
        metadata,
        input_file_id,
        output_file_id,
        error_file_id,
        request_error_rows,
        top_request_error_code,
        is_all_failed
    from measured

)

select * from final
