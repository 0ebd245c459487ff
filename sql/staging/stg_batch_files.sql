-- sqlfluff:rules:references.keywords:ignore_words:bytes,lines
-- (`bytes` and `lines` are the ledger's columns metrics.md promises; DuckDB accepts them)
-- One row per error or output file batchlens fetched, or found gone: the ledger.
with

source as (

    select * from openai_batches.batch_files

),

renamed as (

    select
        -- ids
        account,
        file_id,
        batch_id,

        -- properties
        kind,
        state,
        cast(lines as bigint) as lines,
        cast(bad_lines as bigint) as bad_lines,
        cast(bytes as bigint) as bytes,

        -- timestamps
        cast(loaded_at as timestamptz) as loaded_at

    from source

)

select * from renamed
