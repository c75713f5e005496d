{#
  Engine differences, in one place (DuckDB is the default implementation, Spark the `spark__` one).
  Models call these instead of engine-specific SQL; docs/spark.md lists what each one hides. Several of
  these differences are silent on the other engine (a wrong result, no error): keep them out of models.
#}

{# A SQL string literal of `text`. Spark reads backslashes in literals as escapes ('\s' is 's'). #}
{% macro sql_string(text) -%}
    {{ return(adapter.dispatch('sql_string', 'rapport')(text)) }}
{%- endmacro %}

{% macro default__sql_string(text) -%}
    '{{ text | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__sql_string(text) -%}
    '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}


{# true when the whole of `expr` matches the regular expression `pattern` (written as plain regex text). #}
{% macro regex_full_match(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_full_match', 'rapport')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regex_full_match(expr, pattern) -%}
    regexp_full_match({{ expr }}, {{ rapport.sql_string(pattern) }})
{%- endmacro %}

{% macro spark__regex_full_match(expr, pattern) -%}
    ({{ expr }} rlike {{ rapport.sql_string('^(?:' ~ pattern ~ ')$') }})
{%- endmacro %}


{# ISO 8601 text (with Z or an offset) -> naive UTC timestamp, the warehouse's timestamp convention. #}
{% macro iso_to_utc_timestamp(expr) -%}
    {{ return(adapter.dispatch('iso_to_utc_timestamp', 'rapport')(expr)) }}
{%- endmacro %}

{% macro default__iso_to_utc_timestamp(expr) -%}
    cast(timezone('UTC', cast({{ expr }} as timestamptz)) as timestamp)
{%- endmacro %}

{# Spark's timestamp is an instant, shown in the session time zone (UTC, profiles.yml) #}
{% macro spark__iso_to_utc_timestamp(expr) -%}
    cast({{ expr }} as timestamp)
{%- endmacro %}


{# unix seconds -> naive UTC timestamp #}
{% macro unix_to_utc_timestamp(expr) -%}
    {{ return(adapter.dispatch('unix_to_utc_timestamp', 'rapport')(expr)) }}
{%- endmacro %}

{% macro default__unix_to_utc_timestamp(expr) -%}
    make_timestamp(cast({{ expr }} as bigint) * 1000000)
{%- endmacro %}

{% macro spark__unix_to_utc_timestamp(expr) -%}
    timestamp_seconds(cast({{ expr }} as bigint))
{%- endmacro %}


{# The current time as a naive UTC timestamp. #}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'rapport')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    cast(now() at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro spark__utc_now() -%}
    current_timestamp()
{%- endmacro %}


{# A timestamp as ISO 8601 text to the microsecond, `YYYY-MM-DDTHH:MM:SS.ffffff` (both engines keep
   microseconds: two instants give two texts). #}
{% macro iso_micros_text(expr) -%}
    {{ return(adapter.dispatch('iso_micros_text', 'rapport')(expr)) }}
{%- endmacro %}

{% macro default__iso_micros_text(expr) -%}
    strftime({{ expr }}, '%Y-%m-%dT%H:%M:%S.%f')
{%- endmacro %}

{% macro spark__iso_micros_text(expr) -%}
    date_format({{ expr }}, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
{%- endmacro %}


{# Text at JSON path `path` ('$.a.b') of a JSON text column; null when absent. #}
{% macro json_text(expr, path) -%}
    {{ return(adapter.dispatch('json_text', 'rapport')(expr, path)) }}
{%- endmacro %}

{% macro default__json_text(expr, path) -%}
    ({{ expr }} ->> '{{ path }}')
{%- endmacro %}

{% macro spark__json_text(expr, path) -%}
    get_json_object({{ expr }}, '{{ path }}')
{%- endmacro %}


{# A JSON array of strings (text) -> a list of text; an empty list for null. #}
{% macro json_text_list(expr) -%}
    {{ return(adapter.dispatch('json_text_list', 'rapport')(expr)) }}
{%- endmacro %}

{% macro default__json_text_list(expr) -%}
    coalesce(from_json({{ expr }}, '["VARCHAR"]'), [])
{%- endmacro %}

{% macro spark__json_text_list(expr) -%}
    coalesce(from_json({{ expr }}, 'array<string>'), array())
{%- endmacro %}


{# Integer division of non-negative integers, rounded down. #}
{% macro int_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('int_div', 'rapport')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}
    (({{ numerator }}) // ({{ denominator }}))
{%- endmacro %}

{% macro spark__int_div(numerator, denominator) -%}
    (({{ numerator }}) div ({{ denominator }}))
{%- endmacro %}


{# One row per day from `start_date` to `end_date` (dates, both included): the select-list expression of a
   column named `column`, in a select whose other columns repeat on each of those rows. #}
{% macro days_between(start_date, end_date, column) -%}
    {{ return(adapter.dispatch('days_between', 'rapport')(start_date, end_date, column)) }}
{%- endmacro %}

{% macro default__days_between(start_date, end_date, column) -%}
    cast(unnest(generate_series(cast({{ start_date }} as timestamp), cast({{ end_date }} as timestamp),
        interval 1 day)) as date) as {{ column }}
{%- endmacro %}

{% macro spark__days_between(start_date, end_date, column) -%}
    explode(sequence(cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 day)) as {{ column }}
{%- endmacro %}


{# The materialization of a model that builds incrementally on DuckDB (by value, customer or member: its
   macros say how) and as a whole table on Spark, whose Parquet tables take no row deletes. #}
{% macro incremental_on_duckdb() -%}
    {{ return(adapter.dispatch('incremental_on_duckdb', 'rapport')()) }}
{%- endmacro %}

{% macro default__incremental_on_duckdb() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__incremental_on_duckdb() -%}
    {{ return('table') }}
{%- endmacro %}

{# The materialization of a mart that is a cheap projection of an intermediate table: a view on DuckDB
   (the day's build writes nothing for it; publishing copies every view of `marts` into the published file
   as a table, docs/marts-incremental.md) and a table on Spark, whose built tables come back into the
   working file as tables (rapport.transform.spark_exchange collects tables, not views). #}
{% macro view_on_duckdb() -%}
    {{ return(adapter.dispatch('view_on_duckdb', 'rapport')()) }}
{%- endmacro %}

{% macro default__view_on_duckdb() -%}
    {{ return('view') }}
{%- endmacro %}

{% macro spark__view_on_duckdb() -%}
    {{ return('table') }}
{%- endmacro %}

{# The incremental strategy that replaces what a run recomputes (a model keyed by `unique_key` and
   partitioned by `partition_by` so that both mean the same rows): delete+insert on DuckDB; on Spark
   (Parquet tables, no delete) insert_overwrite of the partitions the run writes. #}
{% macro incremental_replace_strategy() -%}
    {{ return(adapter.dispatch('incremental_replace_strategy', 'rapport')()) }}
{%- endmacro %}

{% macro default__incremental_replace_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__incremental_replace_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}


{# numerator / denominator rounded half up to `scale` decimals, as a decimal(18, scale), exactly alike on
   every engine: DuckDB divides decimals in floating point and Spark in decimal, so a half-way quotient
   rounds differently. For a numerator >= 0 with at most `scale` decimals and a denominator > 0. #}
{% macro decimal_ratio(numerator, denominator, scale=4) -%}
    {%- set units = "cast((" ~ numerator ~ ") * " ~ (10 ** scale) ~ " as bigint)" -%}
    cast(
        cast({{ rapport.int_div('2 * ' ~ units ~ ' + (' ~ denominator ~ ')', '2 * (' ~ denominator ~ ')') }}
            as decimal(18, 0))
        * cast({{ 1 / (10 ** scale) }} as decimal({{ scale + 1 }}, {{ scale }}))
        as decimal(18, {{ scale }}))
{%- endmacro %}


{# A stable bigint key of a text value: the first 15 hex digits of its md5 (60 bits, so never negative), the
   same on both engines. Depends on the value alone, unlike a row_number() that renumbers when a row is
   added. Keys of distinct values collide with probability ~n^2/2^61 (about 1e-5 at 6M values): a model
   keyed on it tests that the key is unique. #}
{% macro stable_key(expr) -%}
    {{ return(adapter.dispatch('stable_key', 'rapport')(expr)) }}
{%- endmacro %}

{% macro default__stable_key(expr) -%}
    cast('0x' || left(md5(cast({{ expr }} as {{ dbt.type_string() }})), 15) as bigint)
{%- endmacro %}

{% macro spark__stable_key(expr) -%}
    cast(conv(left(md5(cast({{ expr }} as {{ dbt.type_string() }})), 15), 16, 10) as bigint)
{%- endmacro %}


{# Whether an incremental int_customer_ids_assigned recomputes only the clusters whose id can change and
   writes only their rows (docs/identity-incremental.md "Stable ids"): not under --full-refresh or --empty,
   and only where the strategy can delete single rows (DuckDB's delete+insert). Spark overwrites whole
   is_current partitions, so there the model selects the table's whole state. (flags.FULL_REFRESH, not
   should_full_refresh(): the model's full_refresh=false keeps the table, yet --full-refresh computes all.) #}
{% macro ids_by_region() -%}
    {{ return(not flags.FULL_REFRESH and not flags.EMPTY and adapter.dispatch('ids_by_region', 'rapport')()) }}
{%- endmacro %}

{% macro default__ids_by_region() -%}
    {{ return(true) }}
{%- endmacro %}

{% macro spark__ids_by_region() -%}
    {{ return(false) }}
{%- endmacro %}
