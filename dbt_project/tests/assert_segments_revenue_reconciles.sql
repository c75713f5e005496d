-- Segment revenue sums to total revenue: the net USD of all valid orders created up to the as-of date,
-- and the high tier's share in value_concentration matches the tier's revenue.
with as_of as (
    select as_of_date
    from {{ ref('int_segment_scopes') }}
    where scope_id = 'as_of'
),

order_revenue as (
    select coalesce(sum(orders.net_revenue_usd), 0) as order_revenue_usd
    from {{ ref('int_orders_enriched') }} as orders
    cross join as_of
    where orders.is_valid and cast(orders.created_at as date) <= as_of.as_of_date
),

segment_revenue as (
    select
        coalesce(sum(monetary_usd), 0) as segment_revenue_usd,
        coalesce(sum(case when value_tier = 'high' then monetary_usd else 0 end), 0) as high_tier_revenue_usd
    from {{ ref('customer_segments') }}
),

summary_revenue as (
    select
        coalesce(sum(revenue_usd), 0) as summary_revenue_usd,
        coalesce(sum(revenue_share), 0) as summary_share
    from {{ ref('segment_summary') }}
),

concentration as (
    select max(top_20pct_revenue_share) as top_share
    from {{ ref('value_concentration') }}
),

totals as (
    select
        order_revenue.order_revenue_usd,
        segment_revenue.segment_revenue_usd,
        segment_revenue.high_tier_revenue_usd,
        summary_revenue.summary_revenue_usd,
        summary_revenue.summary_share,
        concentration.top_share
    from order_revenue
    cross join segment_revenue
    cross join summary_revenue
    cross join concentration
)

select *
from totals
where
    abs(segment_revenue_usd - order_revenue_usd) > 0.01
    or abs(summary_revenue_usd - order_revenue_usd) > 0.01
    or (order_revenue_usd > 0 and abs(summary_share - 1) > 1e-9)
    or (
        order_revenue_usd > 0
        and abs(top_share - cast(high_tier_revenue_usd as double) / cast(order_revenue_usd as double)) > 1e-9
    )
