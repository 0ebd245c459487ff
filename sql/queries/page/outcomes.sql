-- The ways a batch ends, in the lifecycle's order: the daily chart's stack, bottom up.
select
    status,
    label,
    colour
from openai_batches.statuses
where is_terminal
order by lifecycle_order
