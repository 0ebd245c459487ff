-- Every model of the history, with its price periods (none: unpriced) and its batches.
with

history as (

    select
        account,
        model,
        count(*) as batches
    from openai_batches.batch_lifecycle
    where model is not null
    group by account, model

),

costed as (

    select
        account,
        model,
        count(*) as batches_with_usage,
        sum(cost_usd) as cost_usd
    from openai_batches.batch_costs
    group by account, model

),

per_model as (

    select
        history.model,
        sum(history.batches) as batches,
        sum(coalesce(costed.batches_with_usage, 0)) as batches_with_usage,
        sum(costed.cost_usd) as cost_usd
    from history
    left join costed
        on history.account = costed.account and history.model = costed.model
    group by history.model

),

final as (

    select
        per_model.model,
        cast(per_model.batches as bigint) as batches,
        cast(per_model.batches_with_usage as bigint) as batches_with_usage,
        per_model.cost_usd,
        prices.provider,
        prices.valid_from,
        prices.input_mtok,
        prices.cached_input_mtok,
        prices.output_mtok,
        prices.batch_discount,
        prices.source
    from per_model
    left join openai_batches.model_prices as prices
        on per_model.model = prices.model

)

select * from final
order by model, valid_from nulls first
