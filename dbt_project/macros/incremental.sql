{#
  Incremental builds (issue 16, docs/airflow.md "What a run reuses"): the staging models read only the raw
  rows landed since the last complete build.

  rapport.transform.increments passes the var `since`: the latest raw `_extracted_at` when the last complete
  build started (its ledger, ops.transform_increments); null when this build must read everything (first
  build, --full-refresh, changed project or UDFs, rows a build had read were rolled back since), and then
  dbt runs with --full-refresh.

  A model whose table is missing builds in full. Records with versions recompute each touched key from all
  its raw versions (latest_version with landed_keys_where); immutable events append the rows landed after
  the latest one the table holds. A build repeated after a crash, or one that reads some rows a second time,
  gives the same tables.
#}

{# The last columns of an incremental staging model: the raw row's load metadata and the Spark partition
   (`_part`, key_bucket() of the model's key) that insert_overwrite replaces. #}
{% macro load_columns(key, alias=none) -%}
    {%- set prefix = (alias ~ '.') if alias else '' -%}
    {{ prefix }}_run_id,
    {{ prefix }}_extracted_at,
    {{ rapport.key_bucket(key) }} as _part
{%- endmacro %}

{# The `since` timestamp as a SQL literal when this model builds incrementally, else none. #}
{% macro increment_since() -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set since = var('since', none) -%}
    {%- if since is none or since == '' or should_full_refresh() or flags.EMPTY -%}{{ return(none) }}{%- endif -%}
    {%- if adapter.get_relation(this.database, this.schema, this.identifier) is none -%}{{ return(none) }}{%- endif -%}
    {{ return("cast('" ~ since ~ "' as timestamp)") }}
{%- endmacro %}

{# Portable bucket (0-15) of a key, the Spark partition (`_part`) of the staging models: the first hex digit of
   its md5, as its character code. The same value on both engines. #}
{% macro key_bucket(expr) -%}
    ascii(md5(cast({{ expr }} as {{ dbt.type_string() }})))
{%- endmacro %}

{# Condition: `key_expr` is one of the keys `touched_sql` selects (one column named touched_key). On Spark,
   whose staging models replace whole partitions, every key of a touched partition. #}
{% macro in_touched(key_expr, touched_sql) -%}
    {{ return(adapter.dispatch('in_touched', 'rapport')(key_expr, touched_sql)) }}
{%- endmacro %}

{% macro default__in_touched(key_expr, touched_sql) -%}
    ({{ key_expr }}) in (select touched_key from ({{ touched_sql }}) as touched)
{%- endmacro %}

{% macro spark__in_touched(key_expr, touched_sql) -%}
    {{ rapport.key_bucket(key_expr) }} in (
        select {{ rapport.key_bucket('touched_key') }} from ({{ touched_sql }}) as touched
    )
{%- endmacro %}

{# Condition on `relation`'s columns selecting every version of the keys (`key_expr`) that have a version
   landed since the last build, when the model builds incrementally; else none (everything). #}
{% macro landed_keys_where(relation, key_expr) -%}
    {%- set since = rapport.increment_since() -%}
    {%- if not since -%}{{ return(none) }}{%- endif -%}
    {{ return(rapport.in_touched(key_expr, 'select distinct ' ~ key_expr ~ ' as touched_key from ' ~ relation
        ~ ' where _extracted_at > ' ~ since)) }}
{%- endmacro %}

