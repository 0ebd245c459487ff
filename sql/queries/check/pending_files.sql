-- The files the `pending_files` rule names: error and output files whose download has
-- kept failing for more than $pending_s seconds as of "as of". The ledger holds such a
-- file as `pending` since its first failure (`first_failed_at`), with the last failure's
-- reason, and every extraction asks it again until it loads. More than a day (86400) is
-- the rule's default; one row per file, the longest pending first.
with

files as (

    select * from openai_batches.batch_files

),

as_of as (

    select * from openai_batches.as_of

),

threshold as (

    select cast($pending_s as bigint) as pending_s

),

final as (

    select
        files.account,
        files.file_id,
        files.batch_id,
        files.kind,
        files.failure_reason,
        files.first_failed_at,
        (epoch(as_of.as_of) - epoch(files.first_failed_at)) / 3600 as hours_pending
    from files
    cross join as_of
    cross join threshold
    where
        files.state = 'pending'
        and epoch(as_of.as_of) - epoch(files.first_failed_at) > threshold.pending_s

)

select * from final
order by account asc, hours_pending desc, file_id asc
