-- sqlfluff:rules:references.keywords:ignore_words:label
-- (`label` is the column name metrics.md promises; DuckDB accepts it unquoted)
-- The statuses of a batch and the sets they belong to, defined once: every view that asks
-- "is it open, active, terminal?" reads this relation instead of a list of its own, and
-- every surface that shows a status (report, page, notebooks) takes its label and colour
-- from here. active = OpenAI is still working on it; cancelling is open but not active. A
-- status word not listed here (a provider's new one) counts as open, so it is never lost.
with

statuses as (

    select
        statuses.status,
        statuses.lifecycle_order,
        statuses.is_open,
        statuses.is_active,
        statuses.is_terminal,
        statuses.stuck_after_hours,
        statuses.label,
        statuses.colour
    from (
        -- the colours are Okabe and Ito's colour-blind-safe palette (grey for cancelled):
        -- blues while OpenAI works on a batch, one hue per way it can end
        values
        ('validating', 1, true, true, false, null, 'validating', '#56B4E9'),
        ('in_progress', 2, true, true, false, null, 'in progress', '#0072B2'),
        ('finalizing', 3, true, true, false, 6, 'finalizing', '#CC79A7'),
        ('cancelling', 4, true, false, false, null, 'cancelling', '#F0E442'),
        ('completed', 5, false, false, true, null, 'completed', '#009E73'),
        ('failed', 6, false, false, true, null, 'failed', '#D55E00'),
        ('expired', 7, false, false, true, null, 'expired', '#E69F00'),
        ('cancelled', 8, false, false, true, null, 'cancelled', '#999999')
    ) as statuses (
        status,
        lifecycle_order,
        is_open,
        is_active,
        is_terminal,
        stuck_after_hours,
        label,
        colour
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
        cast(stuck_after_hours as double) as stuck_after_hours,
        cast(label as varchar) as label,
        cast(colour as varchar) as colour
    from statuses

)

select * from final
