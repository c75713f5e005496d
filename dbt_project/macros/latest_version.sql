{#
  The latest landed version of each natural key of a raw table (raw tables hold one row per version), as a
  subquery to select from: `from {{ latest_version(source('shop', 'shop_orders'), 'id', 'updated_at desc') }}`.
  `order_by` ranks versions newest first; ties fall back to the landing time. Say where nulls sort in
  `order_by` (`nulls last`): DuckDB puts them last either way, Spark first when ascending. `where`, a
  condition on the raw columns, keeps only some keys (an incremental build's touched keys: all their versions).
#}
{% macro latest_version(relation, partition_by, order_by, where=none) -%}
    (
        select *
        from {{ relation }}
        {%- if where %}
        where {{ where }}
        {%- endif %}
        qualify row_number() over (
            partition by {{ partition_by }}
            order by {{ order_by }}, _extracted_at desc, _source desc
        ) = 1
    ) as versions
{%- endmacro %}
