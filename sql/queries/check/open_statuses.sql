select status
from openai_batches.statuses
where is_open
order by lifecycle_order
