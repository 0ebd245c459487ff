select
    custom_id,
    error_code,
    status_code,
    error_type,
    error_message
from openai_batches.request_errors
where account = $account and batch_id = $batch_id
order by custom_id
