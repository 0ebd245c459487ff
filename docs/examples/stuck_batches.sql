select
    batch_id,
    account,
    status,
    status_since,
    expires_at,
    is_overdue,
    is_stalled,
    round(hours_in_status, 1) as hours_in_status
from openai_batches.open_batches
where is_stuck
order by hours_in_status desc
