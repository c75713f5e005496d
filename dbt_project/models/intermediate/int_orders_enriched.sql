-- One row per order (latest version) with its stitched customer and USD amounts.
-- usd_per_unit: the order currency's rate on the order's created_at date, else the latest earlier rate
-- (ASOF join, DuckDB); USD is 1. net_revenue_usd = (total - refunded_total) * usd_per_unit for valid
-- orders (paid, fulfilled, partially_refunded) and 0 for the others.
with orders as (
    select * from {{ ref('stg_shop__orders') }}
),

identities as (
    select
        source,
        source_id,
        customer_id
    from {{ ref('int_customer_ids_assigned') }}
    where is_current and source in ('orders.customer', 'orders.guest_order')
),

fx as (
    select
        rate_date,
        currency,
        usd_per_unit
    from {{ ref('stg_shop__fx_rates') }}
    where usd_per_unit is not null
),

with_rates as (
    select
        o.*,
        case when o.currency = 'USD' then 1 else fx.usd_per_unit end as usd_per_unit,
        fx.rate_date as fx_rate_date
    from orders as o
    asof left join fx
        on o.currency = fx.currency and cast(o.created_at as date) >= fx.rate_date
)

select
    o.order_id,
    o.customer_id as shop_customer_id,
    i.customer_id,
    o.is_guest,
    o.status,
    o.status in ('paid', 'fulfilled', 'partially_refunded') as is_valid,
    o.currency,
    o.subtotal,
    o.discount_total,
    o.shipping_total,
    o.tax_total,
    o.total,
    o.refunded_total,
    o.total - o.refunded_total as net_total,
    cast(o.usd_per_unit as decimal(18, 8)) as usd_per_unit,
    case when o.currency = 'USD' then null else o.fx_rate_date end as fx_rate_date,
    cast(
        case
            when o.status in ('paid', 'fulfilled', 'partially_refunded')
                then (o.total - o.refunded_total) * o.usd_per_unit
            else 0
        end as decimal(18, 4)
    ) as net_revenue_usd,
    o.created_at,
    o.updated_at,
    o.cancelled_at,
    o.discount_code,
    o.utm_source,
    o.utm_medium,
    o.utm_campaign,
    o.email,
    o.phone,
    o.email_normalized,
    o.phone_normalized
from with_rates as o
left join identities as i
    on
        i.source = case when o.is_guest then 'orders.guest_order' else 'orders.customer' end
        and i.source_id = cast(case when o.is_guest then o.order_id else o.customer_id end as varchar)
