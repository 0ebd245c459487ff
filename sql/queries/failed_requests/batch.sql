-- The batch in every account that has it, and whether its status is terminal (its error
-- file is written then); a status word `statuses` does not know counts as open.
select
    batches.account,
    batches.status,
    batches.error_file_id,
    coalesce(statuses.is_terminal, false) as is_terminal
from openai_batches.stg_batches as batches
left join openai_batches.statuses as statuses
    on batches.status = statuses.status
where batches.batch_id = $batch_id
order by batches.account
