-- Every error reported by batches created in the 24 hours before "as of".
select
    errors.created_at,
    errors.batch_id,
    errors.account,
    errors.status,
    errors.code,
    errors.message,
    errors.line
from openai_batches.batch_errors as errors
cross join openai_batches.as_of as as_of
where errors.created_at > as_of.as_of - interval 24 hour
order by errors.created_at desc, errors.batch_id asc
