{{ config(materialized='incremental', unique_key='order_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- Orders: latest version per order id. customer_id (the shop customer) is null for guest checkouts.
-- Checkout phones carry no country: only numbers written in international form normalise.
-- Incremental (macros/incremental.sql): the orders with a version landed since the last build.
{%- set raw = source('shop', 'shop_orders') %}

with versions as (
    select *
    from {{ latest_version(raw, 'id', 'updated_at desc', where=rapport.landed_keys_where(raw, 'id')) }}
),

emails as (
    {{ normalized_emails('versions') }}
),

phones as (
    {{ normalized_phones('versions') }}
)

select
    v.id as order_id,
    v.customer_id,
    v.customer_id is null as is_guest,
    v.email,
    v.phone,
    lower(trim(v.status)) as status,
    upper(trim(v.currency)) as currency,
    v.subtotal,
    v.discount_total,
    v.shipping_total,
    v.tax_total,
    v.total,
    coalesce(v.refunded_total, 0) as refunded_total,
    v.discount_code,
    v.utm_source,
    v.utm_medium,
    v.utm_campaign,
    v.created_at,
    v.updated_at,
    v.cancelled_at,
    e.email_normalized,
    e.email_is_valid,
    p.phone_normalized,
    {{ rapport.load_columns('v.id', 'v') }}
from versions as v
left join emails as e on v.email = e.email
left join phones as p on v.phone = p.phone
