{# ISO 8601 text (with Z or an offset) -> naive UTC timestamp, the warehouse's timestamp convention. #}
{% macro iso_to_utc_timestamp(expr) -%}
    cast(timezone('UTC', cast({{ expr }} as timestamptz)) as timestamp)
{%- endmacro %}

{# unix seconds -> naive UTC timestamp #}
{% macro unix_to_utc_timestamp(expr) -%}
    make_timestamp(cast({{ expr }} as bigint) * 1000000)
{%- endmacro %}
