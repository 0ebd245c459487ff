select
    count(*) as total,
    count(*) filter (where is_overdue) as overdue,
    count(*) filter (where is_stalled) as long_finalizing
from openai_batches.open_batches
