-- The threshold behind `open_batches.is_stalled` for finalizing, for the table's title
select stuck_after_hours
from openai_batches.statuses
where status = 'finalizing'
