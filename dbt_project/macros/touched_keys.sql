{#
  The pre-hook shape of the models incremental by key (issue 16, docs/marts-incremental.md "The touched-list
  pre-hooks: one macro"): customers (customers_touched.sql), int_email_customers (email_customers_touched.sql),
  int_orders_enriched (orders_touched.sql) and int_campaign_members (campaign_members_touched.sql). Each
  model keeps the SQL of its touched set, and the argument that it is complete, in its own file; this macro
  writes the lists, logs their sizes and renders the delete of their rows.

  list_touched_keys(lists, log_message, delete_from=none, also_delete=none):
  - lists: (relation, key_columns, touched_sql) triples, written in order (a later touched_sql may read an
    earlier list): `create or replace table <relation> as select distinct <key_columns> from (<touched_sql>)`
    (a `temp table` when the relation is in DuckDB's `temp` catalog: one build's scratch, no checkpoint);
  - log_message: logged with the lists' row counts in place of its `{}`s, in order (tests match these lines);
  - delete_from: the table to delete the listed keys' rows from (the model's `this`); none when the model's
    strategy replaces them (int_orders_enriched: delete+insert on its key), and then it renders nothing;
  - also_delete: a condition on that table whose rows go too (customers: the ids no longer current).
  A row goes when its key is in any list: one key column by `in`, several by `exists` (the table then has
  the alias `m`).

  DuckDB only: the default__ (DuckDB) pre-hooks call it; their spark__ forms are empty (the models are plain
  tables there), so a Spark build never renders it.
#}
{% macro list_touched_keys(lists, log_message, delete_from=none, also_delete=none) -%}
    {%- set counts = [] -%}
    {%- for relation, key_columns, touched_sql in lists -%}
        {#- the parenthesis on a line of its own: a touched_sql ending in a -- comment still closes -#}
        {%- set kind = 'temp table' if relation.database == 'temp' else 'table' -%}
        {%- do run_query('create or replace ' ~ kind ~ ' ' ~ relation ~ ' as select distinct ' ~ key_columns | join(', ')
            ~ ' from (' ~ touched_sql ~ '\n) as touched') -%}
        {%- do counts.append(run_query('select count(*) from ' ~ relation).columns[0].values()[0]) -%}
    {%- endfor -%}
    {%- do log(log_message.format(*counts), info=true) -%}
    {%- if delete_from -%}
        {#- the table needs a name only where several key columns are compared with a list's -#}
        {%- set prefix = 'm.' if lists | map(attribute='1') | map('length') | max > 1 else '' -%}
        delete from {{ delete_from }}{{ ' as m' if prefix }}
        where
        {%- for relation, key_columns, touched_sql in lists %}
            {{ 'or ' if not loop.first }}
            {%- if key_columns | length == 1 -%}
                {{ prefix }}{{ key_columns[0] }} in (select t.{{ key_columns[0] }} from {{ relation }} as t)
            {%- else -%}
                exists (
                    select 1 from {{ relation }} as t
                    where {% for key in key_columns %}t.{{ key }} = m.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
                )
            {%- endif -%}
        {%- endfor %}
        {%- if also_delete %}
            or {{ also_delete }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
