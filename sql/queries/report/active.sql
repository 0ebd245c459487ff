-- Every open status, cancelling included: the table is titled "Open now", not "Active now"
select
    account,
    status,
    is_active,
    batches,
    oldest_created_at
from openai_batches.active_batches
order by account, lifecycle_order
