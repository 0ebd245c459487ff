-- Terminal batches over the whole history, per account, endpoint and model: which ones
-- fail most. The counts and rates are defined in failure_rates.
with

failure_rates as (

    select * from openai_batches.failure_rates

),

final as (

    select
        account,
        endpoint,
        model,
        terminal,
        completed,
        failed,
        expired,
        cancelled,
        failure_rate,
        expired_rate,
        cancelled_rate,
        request_total,
        request_failed,
        request_failure_rate
    from failure_rates
    where grain = 'history'

)

select * from final
