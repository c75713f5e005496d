-- How customers moved between rfm_segments from one recorded as-of date of segment_history to a later one
-- ("how many Champions became At Risk"). Dates: var `segment_migration_to_date` (default: the latest
-- as-of date in the history) and var `segment_migration_from_date` (default: the latest date before it);
-- a var names a calendar date and the latest history date on or before it is used
-- (macro segment_migrations_chosen_dates).
-- Customers present on only one of the two dates move from or to '(absent)'. segment_history is a change
-- log: the state at a date is each customer's latest row on or before it, unless that row is 'left'.
-- With the default dates (a day's run) those rows are read from the log's state table
-- (intermediate.segment_history__state: each customer's latest rows), not the whole log, which grows by a
-- day's changes every day (issue 16; macro segment_migrations_reads_state says when that holds).
-- depends_on: {{ ref('segment_history') }}, {{ ref('int_segment_scopes') }} (where the state table is)
{%- set reads_state = rapport.segment_migrations_reads_state() %}
{%- set history_rows = rapport.segment_history_state_relations().state if reads_state is sameas true
    else ref('segment_history') %}

with history as (
    select
        as_of_date,
        customer_id,
        change,
        rfm_segment
    from {{ history_rows }}
),

-- one row: to_date and from_date, chosen among the recorded dates (the vars: macro segment_migrations_chosen_dates)
chosen_dates as (
    select
        to_date,
        from_date
    from {{ rapport.segment_migrations_chosen_dates(ref('segment_history_dates')) }}
),

chosen_to as (
    select to_date from chosen_dates
),

chosen_from as (
    select from_date from chosen_dates
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
