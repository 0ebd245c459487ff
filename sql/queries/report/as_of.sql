select
    as_of,
    as_of_source,
    as_of_day
from openai_batches.as_of
