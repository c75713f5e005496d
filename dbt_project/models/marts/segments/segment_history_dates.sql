-- One row per as-of date recorded in segment_history: the run that last computed it and how many customers
-- its snapshot held. Built before segment_history, which reads the next recorded date from it. A run replaces
-- its own date's row (delete+insert on as_of_date; Spark: insert_overwrite of the date's partition).
-- full_refresh=false: like segment_history, it cannot be rebuilt from the sources.
-- A date a stopped build registered without its log rows is unregistered first, in this model's transaction
-- (pre-hook, DuckDB: macros/segment_history_unwritten.sql), so the registry lists only dates the log holds.
{{
    config(
        materialized='incremental',
        unique_key='as_of_date',
        incremental_strategy=rapport.incremental_replace_strategy(),
        pre_hook="{{ rapport.segment_history_dates_undo_unwritten() }}",
        partition_by=['as_of_date'],
        on_schema_change='append_new_columns',
        full_refresh=false
    )
}}
{#- A warehouse upgraded from the per-date snapshot form (segment_history with recency_days) starts the
    registry from the dates that table holds; not a ref: segment_history depends on this model. -#}
{%- set old_history = none %}
{%- if execute and not is_incremental() %}
    {%- set history = adapter.get_relation(this.database, this.schema, 'segment_history') %}
    {%- if history is not none
        and 'recency_days' in (adapter.get_columns_in_relation(history) | map(attribute='name') | map('lower') | list) %}
        {%- set old_history = history %}
    {%- endif %}
{%- endif %}

with run_date as (
    select as_of_date
    from {{ ref('int_segment_scopes') }}
    where scope_id = 'as_of'
),

run_snapshot as (
    select
        run_date.as_of_date,
        cast('{{ var("run_id", "manual") }}' as {{ dbt.type_string() }}) as run_id,
        {{ utc_now() }} as recorded_at,
        (select count(*) from {{ ref('customer_segments') }}) as customers
    from run_date
),

-- the other dates of a history of the earlier form (none otherwise)
earlier_form_dates as (
    {%- if old_history is not none %}
        select
            as_of_date,
            max(run_id) as run_id,
            max(recorded_at) as recorded_at,
            count(*) as customers
        from {{ old_history }}
        group by as_of_date
    {%- else %}
        select
            as_of_date,
            run_id,
            recorded_at,
            customers
        from run_snapshot
        where false
    {%- endif %}
)

select
    as_of_date,
    run_id,
    recorded_at,
    customers
from run_snapshot

union all

select
    earlier_form_dates.as_of_date,
    earlier_form_dates.run_id,
    earlier_form_dates.recorded_at,
    earlier_form_dates.customers
from earlier_form_dates
where earlier_form_dates.as_of_date not in (select run_date.as_of_date from run_date)
