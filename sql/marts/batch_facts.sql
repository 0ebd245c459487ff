-- One row per batch: its lifecycle (`batch_lifecycle`), with its errors, cost and failed
-- requests, defined once here.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

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

measured as (

    select
        batch_lifecycle.*,
        errors_per_batch.first_error_code,
        batch_costs.cost_usd,
        request_errors_per_batch.top_request_error_code,
        coalesce(errors_per_batch.error_count, 0) as error_count,
        coalesce(request_errors_per_batch.request_error_rows, 0) as request_error_rows
    from batch_lifecycle
    left join errors_per_batch
        on
            batch_lifecycle.account = errors_per_batch.account
            and batch_lifecycle.batch_id = errors_per_batch.batch_id
    left join batch_costs
        on
            batch_lifecycle.account = batch_costs.account
            and batch_lifecycle.batch_id = batch_costs.batch_id
    left join request_errors_per_batch
        on
            batch_lifecycle.account = request_errors_per_batch.account
            and batch_lifecycle.batch_id = request_errors_per_batch.batch_id

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
        is_all_failed,
        request_failed_share,
        request_completed_share,
        furthest_status
    from measured

)

select * from final
