{#
  Keep the latest landed version of each natural key: raw tables hold one row per version.
  `order_by` ranks versions newest first; ties fall back to the landing time.
#}
{% macro latest_version(partition_by, order_by) -%}
    qualify row_number() over (
        partition by {{ partition_by }}
        order by {{ order_by }}, _extracted_at desc, _source desc
    ) = 1
{%- endmacro %}
