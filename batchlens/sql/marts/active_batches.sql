-- Open batches per account and status as of the latest extraction. Every account gets a
-- row for each open status, 0 included, so a dashboard never misses a series.
with

batch_facts as (

    select * from openai_batches.batch_facts

),

extractions as (

    select * from openai_batches.stg_extractions

),

batches_by_status as (

    select
        account,
        status,
        count(*) as batches,
        min(created_at) as oldest_created_at
    from batch_facts
    group by account, status

),

accounts as (

    select account from batches_by_status
    union
    select account from extractions

),

open_statuses as (

    select statuses.status
    from (
        values
        ('validating'),
        ('in_progress'),
        ('finalizing'),
        ('cancelling')
    ) as statuses (status)

),

open_counts as (

    select * from batches_by_status
    where status in ('validating', 'in_progress', 'finalizing', 'cancelling')

),

every_account_and_status as (

    select
        accounts.account,
        open_statuses.status,
        open_counts.oldest_created_at,
        coalesce(open_counts.batches, 0) as batches
    from accounts
    cross join open_statuses
    left join open_counts
        on
            accounts.account = open_counts.account
            and open_statuses.status = open_counts.status

),

final as (

    select
        account,
        status,
        batches,
        oldest_created_at
    from every_account_and_status

)

select * from final
