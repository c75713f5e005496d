{#
  A dbt command that builds (run, build, seed, snapshot, clone; a retry of one) changes the marts the
  pipeline last built and checked (rapport.transform.build_state): this on-run-start hook forgets that state,
  so the next `rapport run` builds and checks again instead of reusing (and publishing) marts it did not
  check. rapport's own builds clear it too (runner.invalidate, the Airflow interceptor); this covers any other
  dbt invocation, e.g. a `dbt build --vars ...` run by hand against the working file. Commands that only
  read (test, compile, docs) leave it.
#}
{% macro forget_reuse_state() -%}
    {{ return(adapter.dispatch('forget_reuse_state', 'rapport')()) }}
{%- endmacro %}

{# Runs the delete itself and commits: the hook's own SQL would run in the transaction the relation lookup
   opened, which dbt then rolls back. Returns no SQL. #}
{% macro default__forget_reuse_state() -%}
    {%- if execute and flags.WHICH in ('run', 'build', 'seed', 'snapshot', 'clone', 'retry') -%}
        {%- set state = adapter.get_relation(database=target.database, schema='ops', identifier='build_state') -%}
        {%- if state is not none -%}
            {%- call statement('forget_reuse_state') -%}
                delete from {{ state }} where step in ('marts', 'report')
            {%- endcall -%}
            {%- do adapter.commit() -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{# On Spark the DuckDB working file holds the state, not Spark: rapport's dbt_build clears it there before the
   build, and a Spark build run by hand leaves the working file's marts as they were. #}
{% macro spark__forget_reuse_state() -%}
{%- endmacro %}
