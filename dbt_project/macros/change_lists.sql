{# Post-hook of a list's consumer: the change list is used up, in the consumer's transaction. Spark keeps no
   change lists (its models build in full). #}
{% macro clear_change_list(relation) -%}
    {{ return(adapter.dispatch('clear_change_list', 'rapport')(relation)) }}
{%- endmacro %}

{% macro default__clear_change_list(relation) -%}
    {%- if execute and not flags.EMPTY and rapport.table_exists_now(relation) -%}
        delete from {{ relation }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__clear_change_list(relation) -%}
{%- endmacro %}

{# true when `relation` exists now (a hook may have created it during this invocation: dbt's relation cache,
   filled when the invocation starts, would not know it). #}
{% macro table_exists_now(relation) -%}
    {{ return(rapport.tables_exist_now([relation])[0]) }}
{%- endmacro %}

{# true when every one of `relations` exists now: one catalog query for all of them. #}
{% macro all_tables_exist_now(relations) -%}
    {{ return(false not in rapport.tables_exist_now(relations)) }}
{%- endmacro %}

{# Whether each of `relations` exists now, in their order, from one catalog query. Not remembered between
   calls: a node's hooks create and drop its own lists and state between the renders that ask (issue 16:
   one query for the relations a check needs together instead of one each, ~20 of a 100k day's 54). #}
{% macro tables_exist_now(relations) -%}
    {%- if relations | length == 0 -%}{{ return([]) }}{%- endif -%}
    {%- set wanted = [] -%}
    {%- for relation in relations -%}
        {%- do wanted.append("(table_catalog = '" ~ relation.database ~ "' and table_schema = '" ~ relation.schema
            ~ "' and table_name = '" ~ relation.identifier ~ "')") -%}
    {%- endfor -%}
    {%- set found = [] -%}
    {%- for row in run_query(
        "select table_catalog, table_schema, table_name from information_schema.tables where "
        ~ wanted | join(' or ')).rows -%}
        {%- do found.append(row[0] ~ '.' ~ row[1] ~ '.' ~ row[2]) -%}
    {%- endfor -%}
    {%- set exist = [] -%}
    {%- for relation in relations -%}
        {%- do exist.append((relation.database ~ '.' ~ relation.schema ~ '.' ~ relation.identifier) in found) -%}
    {%- endfor -%}
    {{ return(exist) }}
{%- endmacro %}
