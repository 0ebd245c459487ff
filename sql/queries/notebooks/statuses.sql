-- The statuses in the lifecycle's order, with the label and colour every chart uses.
select
    status,
    lifecycle_order,
    is_open,
    is_active,
    is_terminal,
    stuck_after_hours,
    label,
    colour
from openai_batches.statuses
order by lifecycle_order
