-- Customers' segments over as-of dates, as a change log (docs/segments_and_campaigns.md "Segment history"):
-- a row for (as_of_date, customer_id) only where the customer's state at that date differs from their state
-- at the previous recorded date (segment_history_dates): 'entered' (first seen, or back after leaving),
-- 'changed', or 'left' (the id disappeared: identity merge; null state). The state at a recorded date d is
-- each customer's latest row with as_of_date <= d, unless that row is 'left'.
--
-- A build for as-of date D writes D's rows (D's snapshot, customer_segments, against the state before D)
-- and re-diffs the next recorded date N after D against D's snapshot; the rows of D and N are replaced
-- (macro segment_history_strategy), every other date's rows stay. So runs in any order of dates, re-runs
-- included, leave the log that running each date once in date order would (its last computed snapshot).
-- full_refresh=false: the history cannot be rebuilt from the sources. A table of the earlier form (a full
-- snapshot per date) is converted once by the pre-hook (macro segment_history_prepare).
{{
    config(
        materialized='incremental',
        incremental_strategy=rapport.segment_history_strategy(),
        pre_hook="{{ rapport.segment_history_prepare() }}",
        on_schema_change='append_new_columns',
        full_refresh=false
    )
}}
{%- set state_columns = rapport.segment_history_state_columns() %}
{%- set previous = rapport.segment_history_previous(this) %}

with run_date as (
    select as_of_date
    from {{ ref('int_segment_scopes') }}
    where scope_id = 'as_of'
),

-- the next recorded date after the run's (no row when there is none)
next_date as (
    select recorded_dates.as_of_date
    from {{ ref('segment_history_dates') }} as recorded_dates
    cross join run_date
    where recorded_dates.as_of_date > run_date.as_of_date
    order by recorded_dates.as_of_date
    limit 1
),

snapshot as (
    select
        as_of_date,
        customer_id,
        rfm_segment,
        lifecycle_stage,
        value_tier,
        engagement_tier,
        support_health,
        r_score,
        f_score,
        m_score,
        frequency,
        monetary_usd,
        cast(last_order_at as date) as last_order_date
    from {{ ref('customer_segments') }}
),

previous_log as (
    {%- if is_incremental() %}
        select
            as_of_date,
            customer_id,
            change,
            {{ state_columns | join(', ') }}
        from {{ previous }}
    {%- else %}
        select
            cast(null as date) as as_of_date,
            cast(null as {{ dbt.type_string() }}) as customer_id,
            cast(null as {{ dbt.type_string() }}) as change,
            {{ state_columns | join(', ') }}
        from snapshot
        where false
    {%- endif %}
),

-- each customer's state just before the run's date (their latest earlier row), labelled with the run's date
state_before_run as (
    select
        run_date.as_of_date,
        previous_log.customer_id,
        {%- for column in state_columns %}
            previous_log.{{ column }},
        {%- endfor %}
        previous_log.change
    from previous_log
    cross join run_date
    where previous_log.as_of_date < run_date.as_of_date
    qualify row_number() over (partition by previous_log.customer_id order by previous_log.as_of_date desc) = 1
),

present_before_run as (
    select *
    from state_before_run
    where change <> 'left'
),

-- each customer's state at the next recorded date as the log held it, labelled with that date
state_at_next as (
    select
        next_date.as_of_date,
        previous_log.customer_id,
        {%- for column in state_columns %}
            previous_log.{{ column }},
        {%- endfor %}
        previous_log.change
    from previous_log
    cross join next_date
    where previous_log.as_of_date <= next_date.as_of_date
    qualify row_number() over (partition by previous_log.customer_id order by previous_log.as_of_date desc) = 1
),

present_at_next as (
    select *
    from state_at_next
    where change <> 'left'
),

-- the run's snapshot as the state the next recorded date is compared with
snapshot_before_next as (
    select
        next_date.as_of_date,
        snapshot.customer_id,
        {%- for column in state_columns %}
            snapshot.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from snapshot
    cross join next_date
),

changes_at_run_date as (
    {{ rapport.segment_history_changes('present_before_run', 'snapshot') }}
),

changes_at_next_date as (
    {{ rapport.segment_history_changes('snapshot_before_next', 'present_at_next') }}
),

changes as (
    select * from changes_at_run_date
    union all
    select * from changes_at_next_date
)

select
    as_of_date,
    customer_id,
    change,
    {{ state_columns | join(', ') }},
    cast('{{ var("run_id", "manual") }}' as {{ dbt.type_string() }}) as run_id,
    {{ utc_now() }} as recorded_at
from changes
{%- if is_incremental() %}
    {{ rapport.segment_history_kept_rows(previous, ['as_of_date', 'customer_id', 'change'] + state_columns
        + ['run_id', 'recorded_at']) }}
{%- endif %}
