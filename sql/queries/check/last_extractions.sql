select
    account,
    max(started_at) as last_extraction_at
from openai_batches.stg_extractions
group by account
