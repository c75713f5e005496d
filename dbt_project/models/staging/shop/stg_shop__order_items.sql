{{ config(materialized='incremental', unique_key='order_item_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- Order lines: latest landing per line id. Incremental (macros/incremental.sql): the lines landed since the
-- last build.
{%- set raw = source('shop', 'shop_order_items') %}

select
    id as order_item_id,
    order_id,
    sku,
    product_name,
    category,
    quantity,
    unit_price,
    quantity * unit_price as line_total,
    {{ rapport.load_columns('id') }}
from {{ latest_version(raw, 'id', '_run_id desc', where=rapport.landed_keys_where(raw, 'id')) }}
