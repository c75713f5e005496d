{#
  A registered date whose log rows were never written (docs/segments_and_campaigns.md "Segment history").
  segment_history_dates registers a build's as-of date D, then segment_history writes D's rows, each model in
  its own transaction: a build that stops between the two (a crash, a failing test of the registry, an error
  in the log's own SQL, a selection of the registry alone) leaves D registered (or, for a re-run, D's row
  naming the new run) with the log as it was, which says that D's state is the previous date's. A re-run of
  D mends it; a later date would not.

  So the next build of the registry, for any date, first undoes such registrations in its own transaction
  (pre-hook): the registry's other dates go back to intermediate.segment_history__state_dates, the registry
  as the log was last written with (the log's strategy keeps it in the log's transaction), as if the stopped
  build had not run. Its snapshot was never recorded, so nothing recorded is lost, and a run for that date
  later (any order of dates) records it. A restored row (a re-run that stopped) takes its customers from the
  log, as `rapport forget` recounts them. A registry without a log (the log's first build stopped) keeps only
  the build's own date.

  DuckDB only: on Spark a build that fails is not collected into the working file. Without the kept registry
  (before the log's first successful build, an earlier form of it, or after a Spark build, which drops it:
  rapport.transform.spark_exchange) nothing is undone.
#}
{% macro segment_history_dates_undo_unwritten() -%}
    {{ return(adapter.dispatch('segment_history_dates_undo_unwritten', 'rapport')()) }}
{%- endmacro %}

{% macro spark__segment_history_dates_undo_unwritten() -%}
    {{ return('') }}
{%- endmacro %}

{% macro default__segment_history_dates_undo_unwritten() -%}
    {%- if not execute or flags.EMPTY or model.resource_type == 'unit_test' or not is_incremental() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set run_date = "(select as_of_date from " ~ ref('int_segment_scopes') ~ " where scope_id = 'as_of')" -%}
    {%- set history_log = adapter.get_relation(this.database, this.schema, 'segment_history') -%}
    {%- set kept = rapport.segment_history_state_relations() -%}
    {%- if history_log is none -%}
        {%- set unwritten_sql -%}
            select as_of_date, run_id from {{ this }} where as_of_date <> {{ run_date }}
        {%- endset -%}
        {%- set undo_sql -%}
            delete from {{ this }} where as_of_date <> {{ run_date }}
        {%- endset -%}
    {%- elif rapport.table_exists_now(kept.dates) and 'recorded_at' in (
        adapter.get_columns_in_relation(kept.dates) | map(attribute='name') | map('lower') | list) -%}
        {#- a registry row is the log's when the kept registry has the same run and time for its date -#}
        {%- set not_logged -%}
            registry.as_of_date <> {{ run_date }}
                and not exists (
                    select 1 from {{ kept.dates }} as kept_dates
                    where
                        kept_dates.as_of_date = registry.as_of_date
                        and kept_dates.run_id is not distinct from registry.run_id
                        and kept_dates.recorded_at is not distinct from registry.recorded_at
                )
        {%- endset -%}
        {%- set unwritten_sql -%}
            select registry.as_of_date, registry.run_id
            from {{ this }} as registry
            where {{ not_logged }}
        {%- endset -%}
        {%- set undo_sql -%}
            delete from {{ this }} as registry
            where {{ not_logged }};
            insert into {{ this }} (as_of_date, run_id, recorded_at, customers)
            select
                kept_dates.as_of_date,
                kept_dates.run_id,
                kept_dates.recorded_at,
                cast(coalesce((
                    select sum(case history.change when 'entered' then 1 when 'left' then -1 else 0 end)
                    from {{ history_log }} as history
                    where history.as_of_date <= kept_dates.as_of_date
                ), 0) as bigint) as customers
            from {{ kept.dates }} as kept_dates
            where
                kept_dates.as_of_date <> {{ run_date }}
                and kept_dates.as_of_date not in (select registered.as_of_date from {{ this }} as registered)
        {%- endset -%}
    {%- else -%}
        {{ return('') }}
    {%- endif -%}
    {%- set unwritten = run_query(unwritten_sql).rows -%}
    {%- if unwritten | length == 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- for row in unwritten -%}
        {{ log('segment_history_dates: ' ~ row[0] ~ ' (run ' ~ row[1] ~ ') was registered by a build that stopped'
            ~ ' before segment_history wrote it: registration undone (run that date again to record it)',
            info=true) }}
    {%- endfor -%}
    {{ return(undo_sql) }}
{%- endmacro %}
