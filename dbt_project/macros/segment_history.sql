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
   empty would keep its old rows. Then the state table follows the log, in the same transaction. #}
{% macro get_incremental_replace_segment_history_dates_sql(arg_dict) -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    {%- set plan = rapport.segment_history_plan() -%}
    delete from {{ arg_dict['target_relation'] }}
    {%- if plan.reads_state %}
    -- the run's date is the latest recorded one: nothing after it to re-diff (a literal: zone maps skip the rest)
    where as_of_date = cast('{{ plan.run_date }}' as date);
    {%- else %}
    where as_of_date in (
        select replaced.as_of_date from ({{ rapport.segment_history_replaced_dates() }}) as replaced
        where replaced.as_of_date is not null
    );
    {%- endif %}
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
    {{ rapport.segment_history_state_update(plan, arg_dict['target_relation'], arg_dict['temp_relation']) }}
{%- endmacro %}


{#
  The state table (docs/segments_and_campaigns.md "Segment history", issue 16): so that a day's build reads
  O(customers) rows, not the whole log, `intermediate.segment_history__state` keeps, for the state date S,
  each customer's latest log row before S and their row at S (if any): the state before a date after S is
  each customer's latest row there, the state before S their row before it. `segment_history__state_dates`
  is the registry (segment_history_dates: as_of_date, run_id, recorded_at) as it was when the log and the
  state were written; S is its latest date. A date recorded or recomputed since by a build that did not keep
  the state (another engine) differs there, and the build reads the whole log instead; a registration whose
  log rows were never written (a build stopped between the registry and the log) is undone by the next build
  of the registry (macros/segment_history_unwritten.sql).
  Written in the log's transaction (the strategy above); rebuilt from the log whenever a build reads the whole
  log; dropped with the log (pre-hook). `rapport forget` deletes the person's rows from it like from every
  derived table (rapport.privacy.database.delete_derived). No times are kept, so a rebuild with the same run
  id keeps the same tables. DuckDB only: on Spark the log is read whole.
#}
{% macro segment_history_state_relations() -%}
    {#- created, not incorporated from the ref: under --empty a ref renders as an empty subquery -#}
    {%- set scopes = ref('int_segment_scopes') -%}
    {%- set named = {} -%}
    {%- for kind, identifier in [('state', 'segment_history__state'), ('dates', 'segment_history__state_dates')] -%}
        {%- do named.update({kind: api.Relation.create(database=scopes.database, schema=scopes.schema,
            identifier=identifier, type='table')}) -%}
    {%- endfor -%}
    {{ return(named) }}
{%- endmacro %}


{# How this build finds the states before its date, as a dict: `reads_state` (true: in the state table, false:
   in the whole log) and `run_date` (ISO text, when reads_state). The state table is read when the run's date
   D is the latest recorded date (nothing after it to re-diff) and the registry, D aside, is the one the state
   was written with (then S is D, a re-run, or the recorded date before D). The model and the strategy both
   call it before anything is written, so they agree. #}
{% macro segment_history_plan() -%}
    {{ return(adapter.dispatch('segment_history_plan', 'rapport')()) }}
{%- endmacro %}

{% macro spark__segment_history_plan() -%}
    {{ return({'reads_state': false, 'run_date': none}) }}
{%- endmacro %}

{% macro default__segment_history_plan() -%}
    {%- set whole_log = {'reads_state': false, 'run_date': none} -%}
    {#- a unit test's inputs are fixtures: the warehouse's state table does not describe them -#}
    {%- if not execute or flags.EMPTY or model.resource_type == 'unit_test' or not is_incremental() -%}
        {{ return(whole_log) }}
    {%- endif -%}
    {%- set existing = adapter.get_relation(this.database, this.schema, this.identifier) -%}
    {%- if existing is none or 'change' not in (
        adapter.get_columns_in_relation(existing) | map(attribute='name') | map('lower') | list) -%}
        {{ return(whole_log) }}
    {%- endif -%}
    {%- set kept = rapport.segment_history_state_relations() -%}
    {%- if not rapport.all_tables_exist_now([kept.state, kept.dates]) -%}
        {{ return(whole_log) }}
    {%- endif -%}
    {%- set found = run_query(rapport.segment_history_plan_sql(kept.dates)).rows -%}
    {%- if found | length > 0 and found[0][0] -%}
        {{ return({'reads_state': true, 'run_date': found[0][1] | string}) }}
    {%- endif -%}
    {{ return(whole_log) }}
{%- endmacro %}

{% macro segment_history_plan_sql(kept_dates) -%}
    with run_date as (
        select as_of_date from {{ ref('int_segment_scopes') }} where scope_id = 'as_of'
    ),

    recorded_other_dates as (
        select as_of_date, run_id from {{ ref('segment_history_dates') }}
        where as_of_date <> (select as_of_date from run_date)
    ),

    kept_other_dates as (
        select as_of_date, run_id from {{ kept_dates }}
        where as_of_date <> (select as_of_date from run_date)
    ),

    registry_differences as (
        select count(*) as differences
        from (
            (select * from recorded_other_dates except select * from kept_other_dates)
            union all
            (select * from kept_other_dates except select * from recorded_other_dates)
        ) as differing
    )

    select
        coalesce(
            (select count(*) from {{ kept_dates }}) > 0
            and (select max(as_of_date) from {{ ref('segment_history_dates') }}) = run_date.as_of_date
            and registry_differences.differences = 0,
            false
        ) as reads_state,
        run_date.as_of_date
    from run_date
    cross join registry_differences
{%- endmacro %}


{# After the log is written (same transaction): the state table for the new state date. When this build read
   the state (plan.reads_state), only this date's rows change: on a new date D after S, each customer keeps
   their latest row (the row before S goes where there is one at S) and D's rows are added; on a re-run of
   S, S's rows are replaced. Otherwise it is rebuilt from the whole log for the latest recorded date. #}
{% macro segment_history_state_update(plan, history, batch) -%}
    {%- if flags.EMPTY -%}{{ return('') }}{%- endif -%}
    {%- set kept = rapport.segment_history_state_relations() -%}
    {%- set column_list = (['as_of_date', 'customer_id', 'change'] + rapport.segment_history_state_columns())
        | join(', ') -%}
    {%- if plan.reads_state %}
    delete from {{ kept.state }}
    where
        as_of_date < (select max(as_of_date) from {{ kept.dates }})
        and cast('{{ plan.run_date }}' as date) > (select max(as_of_date) from {{ kept.dates }})
        and customer_id in (
            select at_state_date.customer_id
            from {{ kept.state }} as at_state_date
            where at_state_date.as_of_date = (select max(as_of_date) from {{ kept.dates }})
        );
    delete from {{ kept.state }} where as_of_date = cast('{{ plan.run_date }}' as date);
    insert into {{ kept.state }} ({{ column_list }})
    select {{ column_list }} from {{ batch }};
    create or replace table {{ kept.dates }} as
    select as_of_date, run_id, recorded_at from {{ ref('segment_history_dates') }};
    {%- else %}
    create or replace table {{ kept.dates }} as
    select as_of_date, run_id, recorded_at from {{ ref('segment_history_dates') }};
    create or replace table {{ kept.state }} as
    with latest_before_state_date as (
        select {{ column_list }}
        from {{ history }}
        where as_of_date < (select max(as_of_date) from {{ kept.dates }})
        qualify row_number() over (partition by customer_id order by as_of_date desc) = 1
    ),

    at_state_date as (
        select {{ column_list }}
        from {{ history }}
        where as_of_date = (select max(as_of_date) from {{ kept.dates }})
    )

    select * from latest_before_state_date
    union all
    select * from at_state_date;
    {%- endif %}
{%- endmacro %}


{# Post-hook (DuckDB): a log without its state table gets it, built from the log in the build's transaction.
   The strategy above writes the state on incremental builds only; without this the first build would leave
   none and the first day after it would read the whole log (and create a relation, which also makes that
   day's publish regenerate the dbt docs). #}
{% macro segment_history_state_if_missing() -%}
    {{ return(adapter.dispatch('segment_history_state_if_missing', 'rapport')()) }}
{%- endmacro %}

{% macro default__segment_history_state_if_missing() -%}
    {%- if not execute or flags.EMPTY or model.resource_type == 'unit_test' -%}{{ return('') }}{%- endif -%}
    {%- set kept = rapport.segment_history_state_relations() -%}
    {%- if rapport.all_tables_exist_now([kept.state, kept.dates]) -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(rapport.segment_history_state_update({'reads_state': false, 'run_date': none}, this, none)) }}
{%- endmacro %}

{% macro spark__segment_history_state_if_missing() -%}
    {{ return('') }}
{%- endmacro %}


{# Drop the state table (pre-hook): the log is missing (the build creates it anew) or is being converted. #}
{% macro segment_history_drop_state() -%}
    {{ return(adapter.dispatch('segment_history_drop_state', 'rapport')()) }}
{%- endmacro %}

{% macro default__segment_history_drop_state() -%}
    {%- set kept = rapport.segment_history_state_relations() -%}
    {%- do run_query('drop table if exists ' ~ kept.state) -%}
    {%- do run_query('drop table if exists ' ~ kept.dates) -%}
{%- endmacro %}

{% macro spark__segment_history_drop_state() -%}
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
    {%- if existing is none -%}
        {%- do rapport.segment_history_drop_state() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(existing) | map(attribute='name') | map('lower') | list -%}
    {%- if 'recency_days' in columns and 'change' not in columns -%}
        {%- set converted = api.Relation.create(database=this.database, schema=this.schema,
            identifier=this.identifier ~ '__converted', type='table') -%}
        {%- do run_query('drop table if exists ' ~ converted) -%}
        {%- do rapport.segment_history_drop_state() -%}
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


{# Post-hook: drop the copy of the previous log once the build has rewritten the log (Spark). It is only the
   overwrite's input: the working DuckDB file holds the log of record and sends it to Spark again after a
   failed build (rapport.transform.spark_exchange), so the copy restores nothing and would double the log's
   Parquet. A build that fails before this leaves it; the next build's pre-hook replaces it. #}
{% macro segment_history_drop_previous() -%}
    {{ return(adapter.dispatch('segment_history_drop_previous', 'rapport')()) }}
{%- endmacro %}

{% macro default__segment_history_drop_previous() -%}
    {{ return('') }}
{%- endmacro %}

{% macro spark__segment_history_drop_previous() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {{ return('drop table if exists ' ~ rapport.segment_history_previous(this)) }}
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


{# The state columns as a select list, each qualified by `relation` when given (no trailing comma). #}
{% macro segment_history_state_list(relation=none) -%}
    {%- for column in rapport.segment_history_state_columns() -%}
        {{ relation ~ '.' if relation }}{{ column }}{{ ',\n        ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}


{#
  segment_migrations (issue 16): its two dates chosen from the registry (vars segment_migration_to_date,
  segment_migration_from_date: a var names a calendar date and the latest recorded date on or before it is
  used; the defaults are the latest recorded date and the one before it): a subquery of one row (to_date,
  from_date), to select from. The model and segment_migrations_reads_state both choose with it.
#}
{% macro segment_migrations_chosen_dates(registry) -%}
    {%- set from_var = var('segment_migration_from_date', none) -%}
    {%- set to_var = var('segment_migration_to_date', none) -%}
    (
        select
            chosen_to.to_date,
            (
                select max(history_dates.as_of_date)
                from {{ registry }} as history_dates
                where
                    history_dates.as_of_date < chosen_to.to_date
                    {%- if from_var %}
                        and history_dates.as_of_date <= cast('{{ from_var }}' as date)
                    {%- endif %}
            ) as from_date
        from (
            select max(history_dates.as_of_date) as to_date
            from {{ registry }} as history_dates
            {%- if to_var %}
                where history_dates.as_of_date <= cast('{{ to_var }}' as date)
            {%- endif %}
        ) as chosen_to
    ) as chosen_dates
{%- endmacro %}


{#
  Where segment_migrations finds the states at its two dates: in the state table (true) or the whole log.
  The state table holds each customer's latest log row before the state date S and their row at S
  (segment_history_state_update), and S is the latest recorded date when the kept registry is the registry
  (as_of_date, run_id, recorded_at: the log and the state were written together by the build that recorded the
  registry as it is; a build stopped since, a Spark build or an earlier form differs or drops it). The log has
  rows only at recorded dates, so when the chosen dates are S and the recorded date before it (the defaults
  on a day's run), each customer's latest row on or before either date is in the state table, and the
  migrations' query over it gives what it gives over the whole log; ~1.1M rows at 1M people, not the whole
  history (~33M after a year). Any other dates (the vars), a state that is not the log's, --empty, a unit
  test or Spark: the whole log.
#}
{% macro segment_migrations_reads_state() -%}
    {{ return(adapter.dispatch('segment_migrations_reads_state', 'rapport')()) }}
{%- endmacro %}

{% macro spark__segment_migrations_reads_state() -%}
    {{ return(false) }}
{%- endmacro %}

{% macro default__segment_migrations_reads_state() -%}
    {%- if not execute or flags.EMPTY or model.resource_type == 'unit_test' -%}{{ return(false) }}{%- endif -%}
    {%- set kept = rapport.segment_history_state_relations() -%}
    {%- if not rapport.all_tables_exist_now([kept.state, kept.dates]) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if 'recorded_at' not in (adapter.get_columns_in_relation(kept.dates) | map(attribute='name') | map('lower')
        | list) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set registry = ref('segment_history_dates') -%}
    {%- set check_sql -%}
        with registry_differences as (
            select count(*) as differences
            from (
                (
                    select as_of_date, run_id, recorded_at from {{ registry }}
                    except
                    select as_of_date, run_id, recorded_at from {{ kept.dates }}
                )
                union all
                (
                    select as_of_date, run_id, recorded_at from {{ kept.dates }}
                    except
                    select as_of_date, run_id, recorded_at from {{ registry }}
                )
            ) as differing
        ),

        state_dates as (
            select
                max(as_of_date) as state_date,
                max(as_of_date) filter (
                    where as_of_date < (select max(kept_dates.as_of_date) from {{ kept.dates }} as kept_dates)
                ) as date_before
            from {{ kept.dates }}
        ),

        chosen_dates as (
            select to_date, from_date from {{ rapport.segment_migrations_chosen_dates(registry) }}
        )

        select coalesce(
            registry_differences.differences = 0
            and chosen_dates.to_date = state_dates.state_date
            and chosen_dates.from_date is not distinct from state_dates.date_before,
            false
        )
        from registry_differences
        cross join state_dates
        cross join chosen_dates
    {%- endset -%}
    {{ return(run_query(check_sql).columns[0].values()[0] == true) }}
{%- endmacro %}
