-- Batches that look stuck: past their completion window, or in the same status for more
-- than 6 hours (finalizing for days happens). Longest first.
select
    batch_id,
    account,
    status,
    status_since,
    expires_at,
    is_overdue,
    round(hours_in_status, 1) as hours_in_status
from openai_batches.open_batches
where is_overdue or hours_in_status > 6
order by hours_in_status desc
