{#
  Generic test: the combination of `columns` is unique (no dbt packages offline, so written here).

  Scoped on a day build (docs/quality.md "dbt tests on a day build"): given a scope (test_scope.sql), an
  incremental build checks only the key combinations of the rows the scope selects, which hold every row
  written since the last build that passed all tests; a duplicate made since then involves such a row, so
  these groups are the only ones that can newly fail. When the scope reads only tested columns, a group is
  in or out of it whole and the filter is enough; otherwise every row of the scoped keys is counted. Full
  builds, `--full-refresh`, Spark and a missing scope check every row (duplicate_groups below).
#}
{% test unique_combination(model, columns=none, column_name=none, landed_in=none, landed_key=none,
                           landed_column=none, touched_values_of=none, written_at_column=none) %}
{#- on a column, `columns` defaults to that column -#}
{%- set columns = columns or [column_name] %}
{%- set scope = rapport.test_scope_where(landed_in, landed_key, landed_column, touched_values_of,
                                        written_at_column, model) %}
{%- if scope and scope['columns'] | reject('in', columns) | list | length == 0 %}
    select {{ columns | join(', ') }}, count(*) as n
    from (select * from {{ model }}) as scoped  {#- a test's `where` makes `model` an aliased subquery #}
    where {{ scope['where'] }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{%- elif scope %}
    with scoped_keys as (
        select distinct {{ columns | join(', ') }}
        from (select * from {{ model }}) as scoped
        where {{ scope['where'] }}
    )

    select
        {%- for column in columns %}
        m.{{ column }},
        {%- endfor %}
        count(*) as n
    from (select * from {{ model }}) as m
    inner join scoped_keys as s
        on
        {%- for column in columns %}
            {% if not loop.first %}and {% endif %}m.{{ column }} is not distinct from s.{{ column }}
        {%- endfor %}
    group by {% for column in columns %}m.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
    having count(*) > 1
{%- else %}
    {{ rapport.duplicate_groups(model, columns) }}
{%- endif %}
{% endtest %}

{#- Every row: the groups of `columns` with more than one row. -#}
{% macro duplicate_groups(model, columns) -%}
    {{ return(adapter.dispatch('duplicate_groups', 'rapport')(model, columns)) }}
{%- endmacro %}

{% macro default__duplicate_groups(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as n
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endmacro %}

{#- DuckDB: group the rows by a 64-bit hash of the combination first (an integer key instead of the strings),
    then count the combinations exactly, but only among the rows whose hash occurs twice. Two rows of one
    combination have the same hash (null included), so every duplicated group is among them; rows that only
    share a hash with another combination are counted as what they are and pass. At 1M people 15-40% less
    CPU on the large tables' multi-column tests, none on one column (docs/quality.md "Whole tests, less work"). -#}
{% macro duckdb__duplicate_groups(model, columns) %}
    with hashes_seen_twice as (
        select hash({{ columns | join(', ') }}) as combination_hash
        from {{ model }}
        group by combination_hash
        having count(*) > 1
    )

    select {{ columns | join(', ') }}, count(*) as n
    from {{ model }}
    where hash({{ columns | join(', ') }}) in (select h.combination_hash from hashes_seen_twice as h)
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endmacro %}
