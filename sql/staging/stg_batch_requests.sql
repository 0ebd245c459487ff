-- One row per line of a batch's error or output file, as the loader kept it: ids, status,
-- error and token counts only (the bodies, users' content, are never stored).
with

source as (

    select * from openai_batches.batch_requests

),

renamed as (

    select
        -- ids
        account,
        batch_id,
        file_id,
        kind,
        line_id,
        custom_id,

        -- properties
        cast(status_code as bigint) as status_code,
        error_code,
        error_type,
        error_message,
        error_param,
        model,

        -- usage
        cast(input_tokens as bigint) as input_tokens,
        cast(cached_tokens as bigint) as cached_tokens,
        cast(output_tokens as bigint) as output_tokens,
        cast(reasoning_tokens as bigint) as reasoning_tokens,
        cast(total_tokens as bigint) as total_tokens

    from source

)

select * from renamed
