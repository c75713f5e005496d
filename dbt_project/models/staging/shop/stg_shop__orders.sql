-- Orders: latest version per order id. customer_id (the shop customer) is null for guest checkouts.
-- Checkout phones carry no country: only numbers written in international form normalise.
select
    id as order_id,
    customer_id,
    customer_id is null as is_guest,
    email,
    phone,
    lower(trim(status)) as status,
    upper(trim(currency)) as currency,
    subtotal,
    discount_total,
    shipping_total,
    tax_total,
    total,
    coalesce(refunded_total, 0) as refunded_total,
    discount_code,
    utm_source,
    utm_medium,
    utm_campaign,
    created_at,
    updated_at,
    cancelled_at,
    {{ normalized_email('email') }} as email_normalized,
    normalize_phone(phone, null) as phone_normalized,
    _run_id,
    _extracted_at
from {{ latest_version(source('shop', 'shop_orders'), 'id', 'updated_at desc') }}
