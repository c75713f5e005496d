{#
  Scopes of the generic tests on a day build (docs/quality.md "dbt tests on a day build", issue 16).

  A build with `since` (macros/incremental.sql) follows the last build that completed, and a build completes
  only when every node and test passed (rapport.transform.runner commits the ledger after the whole build; the
  DAG in the step after all dbt tasks).
  Every incremental model changes only the rows of the keys it touched since `since`: a build that failed
  after it wrote rows leaves `since` where it was, so the next build touches those keys again (the touched
  keys are a function of what landed after `since`, which only grows) and replaces their rows. So the rows
  written since the last passing build are rows of keys touched since `since`, and a scope below is a
  condition that selects at least those rows:

  * landed: `landed_column` is a `landed_key` of a row of `landed_in` (a raw table) landed after `since`:
    a staging model writes only rows of the keys landed since (and events append only rows landed since);
  * touched values: the row's (identifier_type, identifier_value) is listed for this `since` in the list
    int_identity_identifiers_unpivoted keeps (macros/identity_touched.sql), whose post-hook lists every value
    the records it rewrote carry now; a marker row there (the table was rebuilt in full) means no scope.
  * written at: the row's `written_at_column`, the start of the dbt invocation that wrote it (dbt's
    run_started_at in UTC, which the model writes on every row the test reads), is later than the var
    `written_after`: the latest such time in the table when the last passing build completed (recorded by
    rapport.transform.increments.commit), so every row of its state is at or before it and every row written
    since comes from a later invocation, hence later (the same clock). Without `written_after` (a ledger
    written before it existed, or no such table then), later than `since`: every build after the last passing
    one started after that build's batch_at (the latest landing, UTC wall clock), so its rows are selected,
    and so are the passing build's own. When the scope selects more than a quarter of the tested rows, no
    scope: checking every row is cheaper there than the join.

  The condition reads the tested model's columns as `scoped.<column>`.

  none (check every row): no `since`, --full-refresh, --empty, Spark (whose staging models overwrite whole
  key buckets), no scope given, or the list missing.
#}
{% macro test_scope_where(landed_in=none, landed_key=none, landed_column=none, touched_values_of=none,
                          written_at_column=none, model=none) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {{ return(adapter.dispatch('test_scope_where', 'rapport')(landed_in, landed_key, landed_column,
                                                               touched_values_of, written_at_column, model)) }}
{%- endmacro %}

{# {'where': the condition, 'columns': the model's columns it reads} or none. #}
{% macro default__test_scope_where(landed_in, landed_key, landed_column, touched_values_of, written_at_column,
                                   model) -%}
    {%- set since = var('since', none) -%}
    {%- if since is none or since == '' or flags.FULL_REFRESH or flags.EMPTY -%}{{ return(none) }}{%- endif -%}
    {%- set since_sql = "cast('" ~ since ~ "' as timestamp)" -%}
    {%- if landed_in is not none -%}
        {{ return({'where': 'scoped.' ~ landed_column ~ ' in (select landed.' ~ landed_key ~ ' from ' ~ landed_in
            ~ ' as landed where landed._extracted_at > ' ~ since_sql ~ ')', 'columns': [landed_column]}) }}
    {%- elif touched_values_of is not none -%}
        {%- set listed = rapport.identity_touched_values_relation(touched_values_of) -%}
        {%- if adapter.get_relation(listed.database, listed.schema, listed.identifier) is none -%}
            {{ return(none) }}
        {%- endif -%}
        {%- set marker = run_query('select count(*) from ' ~ listed ~ ' where since = ' ~ since_sql
            ~ ' and identifier_type is null') -%}
        {%- if marker.columns[0].values()[0] > 0 -%}{{ return(none) }}{%- endif -%}
        {#- a row with a null type or value is not selected: the not_null tests on both fail the build -#}
        {{ return({'where': '(scoped.identifier_type, scoped.identifier_value) in (select listed.identifier_type, '
            ~ 'listed.identifier_value from ' ~ listed ~ ' as listed where listed.since = ' ~ since_sql ~ ')',
            'columns': ['identifier_type', 'identifier_value']}) }}
    {%- elif written_at_column is not none -%}
        {#- `model`: the tested rows (with the test's `where`); a column scan, ~0.05 s at 1M people. A null
            time (no build writes one) is selected too, so the scope needs no not_null test of its own. -#}
        {%- set column = 'scoped.' ~ written_at_column -%}
        {%- set written_after = var('written_after', none) -%}
        {%- set after_sql = since_sql if written_after is none or written_after == ''
            else "cast('" ~ written_after ~ "' as timestamp)" -%}
        {%- set written = '(' ~ column ~ ' > ' ~ after_sql ~ ' or ' ~ column ~ ' is null)' -%}
        {%- set counts = run_query('select count(*) filter (where ' ~ written ~ '), count(*) from (select * from '
            ~ model ~ ') as scoped') -%}
        {%- if counts.columns[0].values()[0] * 4 > counts.columns[1].values()[0] -%}{{ return(none) }}{%- endif -%}
        {{ return({'where': written, 'columns': [written_at_column]}) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{% macro spark__test_scope_where(landed_in, landed_key, landed_column, touched_values_of, written_at_column,
                                 model) -%}
    {{ return(none) }}
{%- endmacro %}
