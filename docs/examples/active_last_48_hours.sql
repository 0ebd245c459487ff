-- How many batches were active (validating, in progress or finalizing) at each of the
-- last 48 hour marks before "as of", every account together.
select
    hourly.hour,
    sum(hourly.active) as active
from openai_batches.active_batches_hourly as hourly
cross join openai_batches.as_of as as_of
where hourly.hour > as_of.as_of - interval 48 hour
group by hourly.hour
order by hourly.hour
