-- Error files OpenAI deletes within $horizon_s seconds ($retention_s after the batch
-- ended) that were never downloaded: the ledger has no row for them, or holds them as
-- pending (every download so far failed).
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

batches as (

    select * from openai_batches.stg_batches

),

files as (

    select * from openai_batches.batch_files

),

as_of as (

    select * from openai_batches.as_of

),

final as (

    select
        batch_lifecycle.batch_id,
        batch_lifecycle.account,
        batch_lifecycle.status,
        batches.error_file_id,
        (epoch(batch_lifecycle.ended_at) + $retention_s - epoch(as_of.as_of)) / 3600
            as hours_to_deletion
    from batch_lifecycle
    inner join batches
        on
            batch_lifecycle.account = batches.account
            and batch_lifecycle.batch_id = batches.batch_id
    cross join as_of
    left join files
        on
            batches.account = files.account
            and batches.error_file_id = files.file_id
    where
        batch_lifecycle.is_terminal
        and batches.error_file_id is not null
        and (files.file_id is null or files.state = 'pending')
        and epoch(batch_lifecycle.ended_at) + $retention_s > epoch(as_of.as_of)
        and epoch(batch_lifecycle.ended_at) + $retention_s <= epoch(as_of.as_of) + $horizon_s

)

select * from final
order by account, hours_to_deletion, batch_id
