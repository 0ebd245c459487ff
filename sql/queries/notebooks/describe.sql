-- sqlfluff:rules:references.keywords:ignore_words:first,last
-- (the helper reads `first` and `last`; DuckDB accepts them unquoted)
select
    count(*) as batches,
    min(created_at) as first,
    max(created_at) as last
from openai_batches.batch_facts
