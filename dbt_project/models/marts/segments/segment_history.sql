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
-- The state before D is each customer's latest row before D: when D is the latest recorded date (a day's
-- run, or its re-run), it is read from intermediate.segment_history__state (each customer's latest rows,
-- kept in the log's transaction by the strategy), so the build reads O(customers) rows, not the whole log;
-- a backfill reads the whole log and rebuilds that table (macros segment_history_plan, _state_update); the
-- first build writes it too (post-hook), so that the first day after it reads it.
-- full_refresh=false: the history cannot be rebuilt from the sources. A table of the earlier form (a full
-- snapshot per date) is converted once by the pre-hook (macro segment_history_prepare).
{{
    config(
        materialized='incremental',
        incremental_strategy=rapport.segment_history_strategy(),
        pre_hook="{{ rapport.segment_history_prepare() }}",
        post_hook=[
            "{{ rapport.segment_history_state_if_missing() }}",
            "{{ rapport.segment_history_drop_previous() }}",
        ],
        on_schema_change='append_new_columns',
        full_refresh=false
    )
}}
{%- set previous = rapport.segment_history_previous(this) %}
{#- the common case, a run for the latest recorded date, reads each customer's latest rows from the state
    table, not the whole log (macro segment_history_plan) -#}
{%- set plan = rapport.segment_history_plan() %}

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

replaced_dates as (
    select as_of_date from run_date
    union all
    select as_of_date from next_date
),

-- the state (a row is written when one of these changes: macro segment_history_state_columns, whose
-- list the CTEs below select)
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
            {{ rapport.segment_history_state_list() }},
            run_id,
            recorded_at
        from {{ previous }}
    {%- else %}
        select
            cast(null as date) as as_of_date,
            customer_id,
            cast(null as {{ dbt.type_string() }}) as change,
            {{ rapport.segment_history_state_list() }},
            cast(null as {{ dbt.type_string() }}) as run_id,
            cast(null as timestamp) as recorded_at
        from snapshot
        where false
    {%- endif %}
),

-- the rows the states below are found in: the whole log, or the state table (each customer's latest rows:
-- enough when nothing is recorded after the run's date)
searched_rows as (
    select
        as_of_date,
        customer_id,
        change,
        {{ rapport.segment_history_state_list() }}
    from {{ rapport.segment_history_state_relations().state if plan.reads_state else 'previous_log' }}
),

{%- if plan.reads_state %}
    -- the state table holds, per customer, at most one row before the latest date it has below the run's and
    -- at most one at that date (macro segment_history_state_update), so a customer's latest row before the run
    -- is their row at that date if they have one, else their only row: a keyed anti-join of the rows at that
    -- date (~95k at 1M people), not a grouping of every customer's 12-column rows (issue 16)
    rows_before_run as (  -- noqa: ST03
        select *
        from searched_rows
        where as_of_date < cast('{{ plan.run_date }}' as date)
    ),

    latest_date_before_run as (  -- noqa: ST03
        select max(as_of_date) as as_of_date
        from rows_before_run
    ),

    customers_at_latest_date as (  -- noqa: ST03
        select rows_before_run.customer_id
        from rows_before_run
        inner join latest_date_before_run on rows_before_run.as_of_date = latest_date_before_run.as_of_date
    ),
{%- endif %}

-- each customer's state just before the run's date: their latest earlier row
state_before_run as (
    {%- if plan.reads_state %}
        select
            run_date.as_of_date,
            rows_before_run.customer_id,
            rows_before_run.change,
            {{ rapport.segment_history_state_list('rows_before_run') }}
        from rows_before_run
        cross join run_date
        cross join latest_date_before_run
        left join customers_at_latest_date on rows_before_run.customer_id = customers_at_latest_date.customer_id
        where
            rows_before_run.as_of_date = latest_date_before_run.as_of_date
            or customers_at_latest_date.customer_id is null
    {%- else %}
        select
            run_date.as_of_date,
            searched_rows.customer_id,
            searched_rows.change,
            {{ rapport.segment_history_state_list('searched_rows') }}
        from searched_rows
        cross join run_date
        where searched_rows.as_of_date < run_date.as_of_date
        qualify row_number() over (partition by searched_rows.customer_id order by searched_rows.as_of_date desc) = 1
    {%- endif %}
),

-- each customer's state at the next recorded date, as the log held it
state_at_next as (
    select
        next_date.as_of_date,
        searched_rows.customer_id,
        searched_rows.change,
        {{ rapport.segment_history_state_list('searched_rows') }}
    from searched_rows
    cross join next_date
    where searched_rows.as_of_date <= next_date.as_of_date
    qualify row_number() over (partition by searched_rows.customer_id order by searched_rows.as_of_date desc) = 1
),

-- the two comparisons, each labelled with the date its changes are recorded at: the run's date (the state
-- before it -> the run's snapshot) and the next recorded date (the run's snapshot -> the state there);
-- a 'left' row means absent
compared_before as (
    select
        as_of_date,
        customer_id,
        {{ rapport.segment_history_state_list() }}
    from state_before_run
    where change <> 'left'
    union all
    select
        next_date.as_of_date,
        snapshot.customer_id,
        {{ rapport.segment_history_state_list('snapshot') }}
    from snapshot
    cross join next_date
),

compared_after as (
    select
        as_of_date,
        customer_id,
        {{ rapport.segment_history_state_list() }}
    from snapshot
    union all
    select
        as_of_date,
        customer_id,
        {{ rapport.segment_history_state_list() }}
    from state_at_next
    where change <> 'left'
),

-- entered (absent before), left (absent after: null state), changed (a state column differs)
-- (spelled out rather than through macro segment_history_changes, which the conversion uses: the linter
-- cannot see CTEs a macro reads)
changes as (
    select
        coalesce(compared_after.as_of_date, compared_before.as_of_date) as as_of_date,
        coalesce(compared_after.customer_id, compared_before.customer_id) as customer_id,
        case
            when compared_before.customer_id is null then 'entered'
            when compared_after.customer_id is null then 'left'
            else 'changed'
        end as change,
        {{ rapport.segment_history_state_list('compared_after') }}
    from compared_before
    full outer join compared_after
        on
            compared_before.as_of_date = compared_after.as_of_date
            and compared_before.customer_id = compared_after.customer_id
    where
        compared_before.customer_id is null
        or compared_after.customer_id is null
        or compared_before.rfm_segment is distinct from compared_after.rfm_segment
        or compared_before.lifecycle_stage is distinct from compared_after.lifecycle_stage
        or compared_before.value_tier is distinct from compared_after.value_tier
        or compared_before.engagement_tier is distinct from compared_after.engagement_tier
        or compared_before.support_health is distinct from compared_after.support_health
        or compared_before.r_score is distinct from compared_after.r_score
        or compared_before.f_score is distinct from compared_after.f_score
        or compared_before.m_score is distinct from compared_after.m_score
        or compared_before.frequency is distinct from compared_after.frequency
        or compared_before.monetary_usd is distinct from compared_after.monetary_usd
        or compared_before.last_order_date is distinct from compared_after.last_order_date
)

select
    as_of_date,
    customer_id,
    change,
    {{ rapport.segment_history_state_list() }},
    cast('{{ var("run_id", "manual") }}' as {{ dbt.type_string() }}) as run_id,
    {{ utc_now() }} as recorded_at
from changes

union all

-- the rows of other dates, where the batch is the whole table (Spark; macro segment_history_strategy)
select
    as_of_date,
    customer_id,
    change,
    {{ rapport.segment_history_state_list() }},
    run_id,
    recorded_at
from previous_log
where
    {{ rapport.segment_history_batch_keeps_other_dates() }}
    and as_of_date not in (select replaced_dates.as_of_date from replaced_dates)
