-- How customers moved between rfm_segments from one recorded as-of date of segment_history to a later one
-- ("how many Champions became At Risk"). Dates: var `segment_migration_to_date` (default: the latest
-- as-of date in the history) and var `segment_migration_from_date` (default: the latest date before it);
-- a var names a calendar date and the latest history date on or before it is used.
-- Customers present on only one of the two dates move from or to '(absent)'. segment_history is a change
-- log: the state at a date is each customer's latest row on or before it, unless that row is 'left'.
{%- set from_var = var('segment_migration_from_date', none) %}
{%- set to_var = var('segment_migration_to_date', none) %}

with history as (
    select
        as_of_date,
        customer_id,
        change,
        rfm_segment
    from {{ ref('segment_history') }}
),

history_dates as (
    select as_of_date from {{ ref('segment_history_dates') }}
),

chosen_to as (
    select max(as_of_date) as to_date
    from history_dates
    {%- if to_var %}
        where as_of_date <= cast('{{ to_var }}' as date)
    {%- endif %}
),

chosen_from as (
    select max(history_dates.as_of_date) as from_date
    from history_dates
    cross join chosen_to
    where
        history_dates.as_of_date < chosen_to.to_date
        {%- if from_var %}
            and history_dates.as_of_date <= cast('{{ from_var }}' as date)
        {%- endif %}
),

latest_before as (
    select
        history.customer_id,
        history.change,
        history.rfm_segment
    from history
    inner join chosen_from on history.as_of_date <= chosen_from.from_date
    qualify row_number() over (partition by history.customer_id order by history.as_of_date desc) = 1
),

before_state as (
    select
        customer_id,
        rfm_segment
    from latest_before
    where change <> 'left'
),

latest_after as (
    select
        history.customer_id,
        history.change,
        history.rfm_segment
    from history
    inner join chosen_to on history.as_of_date <= chosen_to.to_date
    qualify row_number() over (partition by history.customer_id order by history.as_of_date desc) = 1
),

after_state as (
    select
        customer_id,
        rfm_segment
    from latest_after
    where change <> 'left'
),

moves as (
    select
        coalesce(before_state.rfm_segment, '(absent)') as from_segment,
        coalesce(after_state.rfm_segment, '(absent)') as to_segment,
        count(*) as customers
    from before_state
    full outer join after_state on before_state.customer_id = after_state.customer_id
    group by 1, 2
)

select
    chosen_from.from_date,
    chosen_to.to_date,
    moves.from_segment,
    moves.to_segment,
    moves.customers,
    cast(moves.customers as double) / sum(moves.customers) over (partition by moves.from_segment)
        as share_of_from_segment,
    moves.from_segment = moves.to_segment as is_unchanged
from moves
cross join chosen_from
cross join chosen_to
