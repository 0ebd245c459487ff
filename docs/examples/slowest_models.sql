-- The slowest endpoint and model pairs over the 30 days before "as of": time from
-- in_progress to completed, for completed batches.
select
    facts.endpoint,
    facts.model,
    count(*) as batches,
    quantile_cont(facts.duration_s, 0.5) as duration_p50_s,
    quantile_cont(facts.duration_s, 0.9) as duration_p90_s,
    max(facts.duration_s) as duration_max_s
from openai_batches.batch_facts as facts
cross join openai_batches.as_of as as_of
where
    facts.status = 'completed'
    and facts.created_at > as_of.as_of - interval 30 day
group by facts.endpoint, facts.model
order by duration_p90_s desc
limit 10
