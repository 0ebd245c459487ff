-- sqlfluff:rules:references.keywords:ignore_words:days
-- (`days` is failure_rates_trailing's column; DuckDB accepts it unquoted)
-- The report's windows ($windows: days) per account, from failure_rates_trailing. A window
-- longer than the history is the whole history: its longest row.
with

windows as (

    select unnest($windows) as days

),

trailing_rates as (

    select * from openai_batches.failure_rates_trailing

),

longest as (

    select
        account,
        max(days) as days
    from trailing_rates
    group by account

),

final as (

    select
        windows.days,
        trailing_rates.account,
        trailing_rates.terminal,
        trailing_rates.completed,
        trailing_rates.failed,
        trailing_rates.expired,
        trailing_rates.cancelled,
        trailing_rates.request_total,
        trailing_rates.request_failed,
        trailing_rates.failure_rate,
        trailing_rates.expired_rate,
        trailing_rates.request_failure_rate
    from windows
    cross join longest
    inner join trailing_rates
        on
            longest.account = trailing_rates.account
            and least(windows.days, longest.days) = trailing_rates.days

)

select * from final
order by days, account
