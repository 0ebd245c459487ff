-- One row per batch and account, as the loader wrote it: renamed, nothing derived.
-- `status_raw` and columns the API adds later are left out on purpose: models read
-- only what they name, so a new field never changes a view.
with

source as (

    select * from openai_batches.batches

),

renamed as (

    select
        -- ids
        id as batch_id,
        account,
        input_file_id,
        output_file_id,
        error_file_id,

        -- properties
        status,
        endpoint,
        model,
        completion_window,
        metadata,

        -- request counts
        request_counts__total as request_total,
        request_counts__completed as request_completed,
        request_counts__failed as request_failed,

        -- usage
        usage__input_tokens as input_tokens,
        usage__input_tokens_details__cached_tokens as cached_tokens,
        usage__output_tokens as output_tokens,
        usage__output_tokens_details__reasoning_tokens as reasoning_tokens,
        usage__total_tokens as total_tokens,

        -- timestamps
        cast(created_at as timestamptz) as created_at,
        cast(in_progress_at as timestamptz) as in_progress_at,
        cast(finalizing_at as timestamptz) as finalizing_at,
        cast(completed_at as timestamptz) as completed_at,
        cast(failed_at as timestamptz) as failed_at,
        cast(expired_at as timestamptz) as expired_at,
        cast(cancelling_at as timestamptz) as cancelling_at,
        cast(cancelled_at as timestamptz) as cancelled_at,
        cast(expires_at as timestamptz) as expires_at

    from source

)

select * from renamed
