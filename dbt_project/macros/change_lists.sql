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
    {%- set found = run_query(
        "select count(*) from information_schema.tables where table_catalog = '" ~ relation.database
        ~ "' and table_schema = '" ~ relation.schema ~ "' and table_name = '" ~ relation.identifier ~ "'"
    ).columns[0].values()[0] -%}
    {{ return(found | int > 0) }}
{%- endmacro %}
