select
    week,
    account,
    endpoint,
    terminal,
    failed,
    expired,
    failure_rate,
    expired_rate,
    request_failure_rate
from openai_batches.failure_rates_weekly
order by week desc, account asc, endpoint asc
