-- sqlfluff:rules:references.keywords:ignore_words:day
-- (`day` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- Spend per UTC creation day: every batch created that day, how many have a cost, how
-- many have usage but no price (their cost is unknown, not 0), their tokens and costs.
-- Sums of costs skip unpriced batches; a group without a priced batch has a NULL cost.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

batch_costs as (

    select * from openai_batches.batch_costs

),

batches as (

    select
        batch_lifecycle.account,
        batch_lifecycle.endpoint,
        batch_lifecycle.model,
        batch_lifecycle.created_day,
        batch_costs.batch_id as costed_batch_id,
        batch_costs.is_priced,
        batch_costs.input_tokens,
        batch_costs.cached_tokens,
        batch_costs.output_tokens,
        batch_costs.cost_usd,
        batch_costs.standard_cost_usd,
        batch_costs.saved_usd
    from batch_lifecycle
    left join batch_costs
        on
            batch_lifecycle.account = batch_costs.account
            and batch_lifecycle.batch_id = batch_costs.batch_id

),

daily as (

    select
        account,
        endpoint,
        model,
        created_day as day,
        -- sums of BIGINT are HUGEINT in DuckDB: back to BIGINT for every client
        cast(coalesce(sum(input_tokens), 0) as bigint) as input_tokens,
        cast(coalesce(sum(cached_tokens), 0) as bigint) as cached_tokens,
        cast(coalesce(sum(output_tokens), 0) as bigint) as output_tokens,
        count(*) as batches,
        count(*) filter (where is_priced) as priced_batches,
        count(*) filter (where not is_priced) as unpriced_batches,
        count(*) filter (where costed_batch_id is null) as batches_without_usage,
        sum(cost_usd) as cost_usd,
        sum(standard_cost_usd) as standard_cost_usd,
        sum(saved_usd) as saved_usd
    from batches
    group by created_day, account, endpoint, model

),

final as (

    select
        day,
        account,
        endpoint,
        model,
        batches,
        priced_batches,
        unpriced_batches,
        batches_without_usage,
        input_tokens,
        cached_tokens,
        output_tokens,
        cost_usd,
        standard_cost_usd,
        saved_usd
    from daily

)

select * from final
