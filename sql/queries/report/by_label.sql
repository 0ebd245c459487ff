-- sqlfluff:rules:references.keywords:ignore_words:value
-- (`value` is the report's JSON key; DuckDB accepts it unquoted)
-- The batches created in the last $days UTC days per value of `metadata ->> $key` (NULL:
-- without the key). How the terminal ones ended, and the failure rate, are failure_rates'
-- `label` grain: for each key and value, the row of the earliest day in the window counts
-- every terminal batch from that day to the day of "as of". A key no batch carries puts
-- every batch in the NULL group: that group's row is the grain's key NULL (every batch).
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

as_of as (

    select * from openai_batches.as_of

),

failure_rates as (

    select * from openai_batches.failure_rates

),

window_batches as (

    select
        batch_lifecycle.is_terminal,
        batch_lifecycle.total_tokens,
        batch_lifecycle.metadata ->> $key as metadata_value
    from batch_lifecycle
    cross join as_of
    where
        batch_lifecycle.created_day > as_of.as_of_day - $days
        and batch_lifecycle.created_day <= as_of.as_of_day

),

in_window as (

    select
        metadata_value,
        cast(coalesce(sum(total_tokens), 0) as bigint) as total_tokens,
        count(*) as batches,
        count(*) filter (where not is_terminal) as open
    from window_batches
    group by metadata_value

),

key_is_known as (

    select count(*) > 0 as is_known
    from failure_rates
    where grain = 'label' and label_key = $key

),

label_rates as (

    select
        failure_rates.label_value,
        failure_rates.terminal,
        failure_rates.completed,
        failure_rates.failed,
        failure_rates.expired,
        failure_rates.failure_rate,
        row_number() over (
            partition by failure_rates.label_value
            order by failure_rates.period_start asc
        ) as label_position
    from failure_rates
    cross join as_of
    cross join key_is_known
    where
        failure_rates.grain = 'label'
        and failure_rates.period_start > as_of.as_of_day - $days
        and (
            failure_rates.label_key = $key
            or (failure_rates.label_key is null and not key_is_known.is_known)
        )

),

joined as (

    select
        in_window.metadata_value,
        in_window.batches,
        in_window.open,
        in_window.total_tokens,
        label_rates.failure_rate,
        coalesce(label_rates.terminal, 0) as terminal,
        coalesce(label_rates.completed, 0) as completed,
        coalesce(label_rates.failed, 0) as failed,
        coalesce(label_rates.expired, 0) as expired
    from in_window
    left join label_rates
        on
            in_window.metadata_value is not distinct from label_rates.label_value
            and label_rates.label_position = 1

),

final as (

    select
        metadata_value as value,
        batches,
        open,
        terminal,
        completed,
        failed,
        expired,
        failure_rate,
        total_tokens
    from joined

)

select * from final
order by batches desc, value asc nulls last
