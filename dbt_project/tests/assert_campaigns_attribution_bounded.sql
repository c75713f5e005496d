-- Attribution never double counts: each credited order is one valid order credited to one campaign, the
-- campaigns' attributed orders and revenue add up to exactly those orders, so attributed revenue can
-- never exceed the revenue of the attributed orders.
with credited as (
    select
        attribution.order_id,
        attribution.net_revenue_usd,
        orders.net_revenue_usd as order_revenue_usd,
        orders.is_valid
    from {{ ref('int_order_attribution') }} as attribution
    left join {{ ref('int_orders_enriched') }} as orders on attribution.order_id = orders.order_id
),

totals as (
    select
        (select count(*) from credited) as credited_rows,
        (select count(distinct order_id) from credited) as credited_orders,
        (
            select count(*) from credited
            where not coalesce(is_valid, false)
        ) as invalid_credited,
        (select coalesce(sum(order_revenue_usd), 0) from credited) as credited_order_revenue_usd,
        (select coalesce(sum(attributed_orders), 0) from {{ ref('campaign_performance') }}) as mart_orders,
        (select coalesce(sum(attributed_revenue_usd), 0) from {{ ref('campaign_performance') }})
            as mart_revenue_usd
)

select *
from totals
where
    credited_rows <> credited_orders
    or invalid_credited > 0
    or mart_orders > credited_orders
    or mart_revenue_usd > credited_order_revenue_usd + 0.01
