-- The statuses of a batch and the sets they belong to, defined once: every view that asks
-- "is it open, active, terminal?" reads this relation instead of a list of its own.
-- active = OpenAI is still working on it; cancelling is open but not active. A status
-- word not listed here (a provider's new one) counts as open, so it is never lost.
with

statuses as (

    select
        statuses.status,
        statuses.lifecycle_order,
        statuses.is_open,
        statuses.is_active,
        statuses.is_terminal,
        statuses.stuck_after_hours
    from (
        values
        ('validating', 1, true, true, false, null),
        ('in_progress', 2, true, true, false, null),
        ('finalizing', 3, true, true, false, 6),
        ('cancelling', 4, true, false, false, null),
        ('completed', 5, false, false, true, null),
        ('failed', 6, false, false, true, null),
        ('expired', 7, false, false, true, null),
        ('cancelled', 8, false, false, true, null)
    ) as statuses (
        status, lifecycle_order, is_open, is_active, is_terminal, stuck_after_hours
    )

),

final as (

    select
        cast(status as varchar) as status,
        cast(lifecycle_order as integer) as lifecycle_order,
        cast(is_open as boolean) as is_open,
        cast(is_active as boolean) as is_active,
        cast(is_terminal as boolean) as is_terminal,
        -- finalizing takes minutes; hours in it means the batch is stuck
        cast(stuck_after_hours as double) as stuck_after_hours
    from statuses

)

select * from final
