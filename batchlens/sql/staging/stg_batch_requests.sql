-- sqlfluff:rules:references.keywords:ignore_words:account,model
-- (the column names issue 10's staging view promises)
-- placeholder until issue 10 lands
-- One row per line of a batch's output and error files (issue 10 loads them). Until
-- then: the columns the cost models read, typed, and no rows.
select
    cast(null as varchar) as account,
    cast(null as varchar) as batch_id,
    cast(null as varchar) as custom_id,
    cast(null as varchar) as kind,
    cast(null as varchar) as model,
    cast(null as bigint) as input_tokens,
    cast(null as bigint) as cached_tokens,
    cast(null as bigint) as output_tokens,
    cast(null as bigint) as reasoning_tokens,
    cast(null as bigint) as total_tokens
where false
