-- One row per account and successful extraction run: the history of "as of".
with

source as (

    select * from openai_batches.extractions

),

renamed as (

    select
        -- ids
        _dlt_load_id as load_id,
        account,

        -- properties
        mode as extraction_mode,
        pages,
        list_requests,
        retrieve_requests,
        http_attempts,
        batches_loaded,
        status_changes,
        still_open,

        -- timestamps
        cast(started_at as timestamptz) as started_at,
        cast(finished_at as timestamptz) as finished_at

    from source

)

select * from renamed
