-- Failure rate by week (weeks start on Monday, UTC), every account together.
-- A rate over several days is a sum of counts over a sum of batches, never an average
-- of daily rates: a quiet day must not weigh as much as a busy one.
select
    date_trunc('week', day) as week,
    sum(terminal) as terminal,
    sum(failed) as failed,
    sum(expired) as expired,
    sum(failed) / nullif(sum(terminal), 0) as failure_rate,
    sum(expired) / nullif(sum(terminal), 0) as expired_rate,
    sum(request_failed) / nullif(sum(request_total), 0) as request_failure_rate
from openai_batches.failure_rates_daily
group by date_trunc('week', day)
order by week desc
