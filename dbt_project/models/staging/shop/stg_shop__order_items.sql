-- Order lines: latest landing per line id.
select
    id as order_item_id,
    order_id,
    sku,
    product_name,
    category,
    quantity,
    unit_price,
    quantity * unit_price as line_total,
    _run_id,
    _extracted_at
from {{ latest_version(source('shop', 'shop_order_items'), 'id', '_run_id desc') }}
