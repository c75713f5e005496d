-- Sum of lifetime_revenue_usd over customers equals the net USD revenue of all valid orders.
with customers as (
    select coalesce(sum(lifetime_revenue_usd), 0) as revenue from {{ ref('customers') }}
),

orders as (
    select coalesce(sum((total - refunded_total) * usd_per_unit), 0) as revenue
    from {{ ref('int_orders_enriched') }}
    where status in ('paid', 'fulfilled', 'partially_refunded')
)

select
    c.revenue as customers_revenue,
    o.revenue as orders_revenue
from customers as c, orders as o
-- per-order rounding to 4 decimals allows at most half a unit in the 4th place per order
where abs(c.revenue - o.revenue) > 0.00005 * (select count(*) from {{ ref('int_orders_enriched') }})
