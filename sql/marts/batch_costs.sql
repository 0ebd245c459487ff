-- What each batch with known usage cost: its tokens at the price valid on its creation
-- day, times the fraction paid in batch. Usage is the batch's own (`usage`, on batches
-- created since September 2025) or else the sum of its output file's lines. A batch whose
-- model has no price has a NULL cost, never 0: unpriced is not free.
with

batches as (

    -- `created_day` is defined there, and costs_daily joins on it
    select * from openai_batches.batch_lifecycle

),

batch_requests as (

    select * from openai_batches.stg_batch_requests

),

model_prices as (

    select * from openai_batches.model_prices

),

output_file_usage as (

    select
        account,
        batch_id,
        -- sums of BIGINT are HUGEINT in DuckDB, NUMERIC in PostgreSQL: back to BIGINT
        cast(sum(input_tokens) as bigint) as input_tokens,
        cast(sum(cached_tokens) as bigint) as cached_tokens,
        cast(sum(output_tokens) as bigint) as output_tokens
    from batch_requests
    where kind = 'output'
    group by account, batch_id

),

usage_with_source as (

    select
        batches.batch_id,
        batches.account,
        batches.endpoint,
        batches.model,
        batches.created_day,
        case
            when batches.input_tokens is not null then 'batch'
            when output_file_usage.input_tokens is not null then 'output_file'
        end as usage_source,
        coalesce(batches.input_tokens, output_file_usage.input_tokens) as input_tokens,
        case
            when batches.input_tokens is not null then coalesce(batches.cached_tokens, 0)
            else coalesce(output_file_usage.cached_tokens, 0)
        end as cached_tokens,
        case
            when batches.input_tokens is not null then coalesce(batches.output_tokens, 0)
            else coalesce(output_file_usage.output_tokens, 0)
        end as output_tokens
    from batches
    left join output_file_usage
        on
            batches.account = output_file_usage.account
            and batches.batch_id = output_file_usage.batch_id

),

batch_usage as (

    select * from usage_with_source
    where usage_source is not null

),

usage_days as (

    -- the price depends only on the model and the day: ranked once per pair, not per batch
    select distinct
        model,
        created_day
    from batch_usage

),

day_prices as (

    -- every price period of the model that had started by the day; the latest one is the
    -- price valid then (valid_from NULL: since always)
    select
        usage_days.model,
        usage_days.created_day,
        model_prices.input_mtok,
        model_prices.cached_input_mtok,
        model_prices.output_mtok,
        model_prices.batch_discount,
        model_prices.source as price_source,
        row_number() over (
            partition by usage_days.model, usage_days.created_day
            order by model_prices.valid_from desc nulls last
        ) as period_rank
    from usage_days
    left join model_prices
        on
            usage_days.model = model_prices.model
            and (
                model_prices.valid_from is null
                or usage_days.created_day >= model_prices.valid_from
            )

),

priced as (

    select
        batch_usage.*,
        day_prices.input_mtok,
        day_prices.cached_input_mtok,
        day_prices.output_mtok,
        day_prices.batch_discount,
        day_prices.price_source,
        (
            (batch_usage.input_tokens - batch_usage.cached_tokens) * day_prices.input_mtok
            + batch_usage.cached_tokens * day_prices.cached_input_mtok
            + batch_usage.output_tokens * day_prices.output_mtok
        ) / 1000000 as standard_cost_usd
    from batch_usage
    left join day_prices
        on
            batch_usage.model = day_prices.model
            and batch_usage.created_day = day_prices.created_day
            and day_prices.period_rank = 1

),

discounted as (

    select
        *,
        batch_discount * standard_cost_usd as cost_usd,
        (1 - batch_discount) * standard_cost_usd as saved_usd,
        input_mtok is not null as is_priced
    from priced

),

final as (

    select
        batch_id,
        account,
        endpoint,
        model,
        created_day,
        input_tokens,
        cached_tokens,
        output_tokens,
        cost_usd,
        standard_cost_usd,
        saved_usd,
        is_priced,
        price_source,
        usage_source
    from discounted

)

select * from final
