-- The failure rates of the terminal batches each account created in the last $window_s
-- seconds before "as of". failure_rates' `since` grain counts, for every creation instant,
-- the account's terminal batches created at or after it: the window is the row of its
-- earliest instant, so the rates are the mart's own, never divided again here.
with

failure_rates as (

    select * from openai_batches.failure_rates

),

as_of as (

    select * from openai_batches.as_of

),

in_window as (

    select
        failure_rates.*,
        row_number() over (
            partition by failure_rates.account
            order by failure_rates.first_created_at asc
        ) as window_position
    from failure_rates
    cross join as_of
    where
        failure_rates.grain = 'since'
        and epoch(failure_rates.first_created_at) > epoch(as_of.as_of) - $window_s

),

final as (

    select
        account,
        terminal,
        failed,
        request_total,
        request_failed,
        failure_rate,
        request_failure_rate
    from in_window
    where window_position = 1

)

select * from final
order by account
