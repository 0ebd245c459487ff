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

batches_daily as (

    select
        account,
        endpoint,
        model,
        created_day,
        count(*) as batches
    from batch_lifecycle
    group by created_day, account, endpoint, model

),

costs_by_day as (

    -- grouped before they meet the batches: two aggregations and a join of their groups
    -- instead of a join of every batch to its cost (1,000,000 rows, BENCHMARKS.md)
    select
        account,
        endpoint,
        model,
        created_day,
        -- sums of BIGINT are HUGEINT in DuckDB: back to BIGINT for every client
        cast(sum(input_tokens) as bigint) as input_tokens,
        cast(sum(cached_tokens) as bigint) as cached_tokens,
        cast(sum(output_tokens) as bigint) as output_tokens,
        count(*) as costed_batches,
        count(*) filter (where is_priced) as priced_batches,
        count(*) filter (where not is_priced) as unpriced_batches,
        sum(cost_usd) as cost_usd,
        sum(standard_cost_usd) as standard_cost_usd,
        sum(saved_usd) as saved_usd
    from batch_costs
    group by created_day, account, endpoint, model

),

daily as (

    select
        batches_daily.account,
        batches_daily.endpoint,
        batches_daily.model,
        batches_daily.created_day as day,
        batches_daily.batches,
        costs_by_day.cost_usd,
        costs_by_day.standard_cost_usd,
        costs_by_day.saved_usd,
        coalesce(costs_by_day.input_tokens, 0) as input_tokens,
        coalesce(costs_by_day.cached_tokens, 0) as cached_tokens,
        coalesce(costs_by_day.output_tokens, 0) as output_tokens,
        coalesce(costs_by_day.priced_batches, 0) as priced_batches,
        coalesce(costs_by_day.unpriced_batches, 0) as unpriced_batches,
        batches_daily.batches - coalesce(costs_by_day.costed_batches, 0)
            as batches_without_usage
    from batches_daily
    left join costs_by_day
        on
            batches_daily.account = costs_by_day.account
            and batches_daily.created_day = costs_by_day.created_day
            -- endpoint and model may be NULL: a NULL group meets its NULL group
            and batches_daily.endpoint is not distinct from costs_by_day.endpoint
            and batches_daily.model is not distinct from costs_by_day.model

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
