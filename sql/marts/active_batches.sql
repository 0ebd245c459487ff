-- Open batches per account and status as of the latest extraction. Every account gets a
-- row for each open status, 0 included, so a dashboard never misses a series.
with

batch_lifecycle as (

    select * from openai_batches.batch_lifecycle

),

extractions as (

    select * from openai_batches.stg_extractions

),

statuses as (

    select * from openai_batches.statuses

),

batches_by_status as (

    select
        account,
        status,
        count(*) as batches,
        min(created_at) as oldest_created_at
    from batch_lifecycle
    group by account, status

),

accounts as (

    select account from batches_by_status
    union
    select account from extractions

),

open_statuses as (

    select
        status,
        lifecycle_order,
        is_active
    from statuses
    where is_open

),

every_account_and_status as (

    select
        accounts.account,
        open_statuses.status,
        open_statuses.lifecycle_order,
        open_statuses.is_active,
        batches_by_status.oldest_created_at,
        coalesce(batches_by_status.batches, 0) as batches
    from accounts
    cross join open_statuses
    left join batches_by_status
        on
            accounts.account = batches_by_status.account
            and open_statuses.status = batches_by_status.status

),

final as (

    select
        account,
        status,
        batches,
        oldest_created_at,
        is_active,
        lifecycle_order
    from every_account_and_status

)

select * from final
