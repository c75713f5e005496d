{#
  marts.segment_history is a change log (docs/segments_and_campaigns.md "Segment history"): a row per
  (as_of_date, customer_id) where the customer's state differs from their state at the previous recorded
  as-of date (marts.segment_history_dates). A build for as-of date D replaces the rows of D (diffed against
  the state before D) and of the next recorded date after D (re-diffed against D's snapshot); every other
  date's rows stay as they are, since each date only depends on the state just before it.
#}

{# The columns a customer's state is made of: a row is written when one of them changes. #}
{% macro segment_history_state_columns() -%}
    {{ return([
        'rfm_segment', 'lifecycle_stage', 'value_tier', 'engagement_tier', 'support_health',
        'r_score', 'f_score', 'm_score', 'frequency', 'monetary_usd', 'last_order_date',
    ]) }}
{%- endmacro %}


{# The change rows from `before` to `after` (relations or CTE names with as_of_date, customer_id and the state
   columns; as_of_date is the date the change is recorded at, the join key with customer_id): 'entered'
   (absent before), 'left' (absent after: null state), 'changed' (some state column differs). #}
{% macro segment_history_changes(before, after) -%}
    select
        coalesce({{ after }}.as_of_date, {{ before }}.as_of_date) as as_of_date,
        coalesce({{ after }}.customer_id, {{ before }}.customer_id) as customer_id,
        case
            when {{ before }}.customer_id is null then 'entered'
            when {{ after }}.customer_id is null then 'left'
            else 'changed'
        end as change,
        {%- for column in rapport.segment_history_state_columns() %}
            {{ after }}.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ before }}
    full outer join {{ after }}
        on
            {{ before }}.as_of_date = {{ after }}.as_of_date
            and {{ before }}.customer_id = {{ after }}.customer_id
    where
        {{ before }}.customer_id is null
        or {{ after }}.customer_id is null
        {%- for column in rapport.segment_history_state_columns() %}
            or {{ before }}.{{ column }} is distinct from {{ after }}.{{ column }}
        {%- endfor %}
{%- endmacro %}


{# The as-of dates a build replaces: the run's, and the next recorded one after it (null when none). #}
{% macro segment_history_replaced_dates() -%}
    select as_of_date from {{ ref('int_segment_scopes') }} where scope_id = 'as_of'
    union all
    select min(recorded_dates.as_of_date) as as_of_date
    from {{ ref('segment_history_dates') }} as recorded_dates
    where recorded_dates.as_of_date > (
        select as_of_date from {{ ref('int_segment_scopes') }} where scope_id = 'as_of'
    )
{%- endmacro %}


{# Incremental strategy of segment_history on DuckDB: delete the replaced dates' rows, then insert the
   batch. dbt's delete+insert deletes only the keys the batch holds, so a date whose change set became
   empty would keep its old rows. #}
{% macro get_incremental_replace_segment_history_dates_sql(arg_dict) -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    delete from {{ arg_dict['target_relation'] }}
    where as_of_date in (
        select replaced.as_of_date from ({{ rapport.segment_history_replaced_dates() }}) as replaced
        where replaced.as_of_date is not null
    );
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}


{# How segment_history writes a build's batch. DuckDB: the replaced dates' rows (strategy above). Spark
   (append / insert_overwrite only on Parquet): the whole table, rewritten from a copy of the previous log
   (segment_history_previous), since Spark cannot overwrite a table a query of the same statement reads. #}
{% macro segment_history_strategy() -%}
    {{ return(adapter.dispatch('segment_history_strategy', 'rapport')()) }}
{%- endmacro %}

{% macro default__segment_history_strategy() -%}
    {{ return('replace_segment_history_dates') }}
{%- endmacro %}

{% macro spark__segment_history_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}


{# The relation holding the log before this build: the table itself (DuckDB), or its copy (Spark). #}
{% macro segment_history_previous(relation) -%}
    {{ return(adapter.dispatch('segment_history_previous', 'rapport')(relation)) }}
{%- endmacro %}

{% macro default__segment_history_previous(relation) -%}
    {{ return(relation) }}
{%- endmacro %}

{% macro spark__segment_history_previous(relation) -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ '__previous'})) }}
{%- endmacro %}


{# Whether a build's batch also holds the previous log's rows of the dates it does not replace: not on
   DuckDB (the strategy leaves them in place), yes on Spark (the batch is the whole table). #}
{% macro segment_history_batch_keeps_other_dates() -%}
    {{ return(adapter.dispatch('segment_history_batch_keeps_other_dates', 'rapport')()) }}
{%- endmacro %}

{% macro default__segment_history_batch_keeps_other_dates() -%}
    false
{%- endmacro %}

{% macro spark__segment_history_batch_keeps_other_dates() -%}
    true
{%- endmacro %}


{# Pre-hook of segment_history: converts a table of the old form (a full snapshot per as-of date, with
   recency_days) into the change log once, then on Spark copies the log to segment_history_previous. #}
{% macro segment_history_prepare() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) -%}
    {%- if existing is none -%}{{ return('') }}{%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(existing) | map(attribute='name') | map('lower') | list -%}
    {%- if 'recency_days' in columns and 'change' not in columns -%}
        {%- set converted = api.Relation.create(database=this.database, schema=this.schema,
            identifier=this.identifier ~ '__converted', type='table') -%}
        {%- do run_query('drop table if exists ' ~ converted) -%}
        {%- do run_query(create_table_as(False, converted, rapport.segment_history_from_snapshots(existing))) -%}
        {%- do adapter.drop_relation(existing) -%}
        {%- do adapter.rename_relation(converted, this.incorporate(type='table')) -%}
        {{ log('segment_history: converted the per-date snapshots into the change log', info=true) }}
    {%- endif -%}
    {%- do rapport.segment_history_copy_previous(this) -%}
    {{ return('') }}
{%- endmacro %}

{% macro segment_history_copy_previous(relation) -%}
    {{ return(adapter.dispatch('segment_history_copy_previous', 'rapport')(relation)) }}
{%- endmacro %}

{% macro default__segment_history_copy_previous(relation) -%}
{%- endmacro %}

{% macro spark__segment_history_copy_previous(relation) -%}
    {%- set previous = rapport.segment_history_previous(relation) -%}
    {%- do run_query('drop table if exists ' ~ previous) -%}
    {%- do run_query(create_table_as(False, previous, 'select * from ' ~ relation)) -%}
{%- endmacro %}


{# The change log of a table of the old form: each recorded date diffed against the one before it (the
   first: everyone entered). The last order's date is the as-of date minus recency_days; a 'left' row takes
   the run id and time that wrote its date. #}
{% macro segment_history_from_snapshots(old) -%}
    {%- set state_columns = rapport.segment_history_state_columns() -%}
    with snapshots as (
        select
            as_of_date,
            customer_id,
            {%- for column in state_columns if column != 'last_order_date' %}
                {{ column }},
            {%- endfor %}
            cast({{ dbt.dateadd('day', '-1 * recency_days', 'as_of_date') }} as date) as last_order_date,
            run_id,
            recorded_at
        from {{ old }}
    ),

    recorded_dates as (
        select
            as_of_date,
            max(run_id) as run_id,
            max(recorded_at) as recorded_at
        from snapshots
        group by as_of_date
    ),

    date_pairs as (
        select
            as_of_date,
            lag(as_of_date) over (order by as_of_date) as previous_date
        from recorded_dates
    ),

    after_state as (
        select snapshots.*
        from snapshots
    ),

    -- each date's previous snapshot, labelled with the date it is compared at
    before_state as (
        select
            date_pairs.as_of_date,
            snapshots.customer_id,
            {%- for column in state_columns %}
                snapshots.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from snapshots
        inner join date_pairs on snapshots.as_of_date = date_pairs.previous_date
    ),

    changes as (
        {{ rapport.segment_history_changes('before_state', 'after_state') }}
    )

    select
        changes.*,
        coalesce(after_state.run_id, recorded_dates.run_id) as run_id,
        coalesce(after_state.recorded_at, recorded_dates.recorded_at) as recorded_at
    from changes
    inner join recorded_dates on changes.as_of_date = recorded_dates.as_of_date
    left join after_state
        on changes.as_of_date = after_state.as_of_date and changes.customer_id = after_state.customer_id
{%- endmacro %}
