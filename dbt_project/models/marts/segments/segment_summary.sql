-- One row per rfm_segment (all eleven, empty ones with zeros, so dashboards keep a stable shape).
with segment_names as (
    select * from (
        values
            (1, 'Champions'), (2, 'Loyal Customers'), (3, 'Potential Loyalists'), (4, 'New Customers'),
            (5, 'Promising'), (6, 'Need Attention'), (7, 'About to Sleep'), (8, 'At Risk'),
            (9, 'Cannot Lose Them'), (10, 'Hibernating'), (11, 'No Purchases')
    ) as names (segment_order, rfm_segment)
),

segments as (
    select rfm_segment, frequency, monetary_usd, as_of_date
    from {{ ref('customer_segments') }}
),

per_segment as (
    select
        rfm_segment,
        count(*) as customers,
        sum(monetary_usd) as revenue_usd,
        sum(frequency) as orders
    from segments
    group by rfm_segment
),

totals as (
    select sum(monetary_usd) as total_revenue_usd, max(as_of_date) as as_of_date
    from segments
)

select
    segment_names.rfm_segment,
    totals.as_of_date,
    coalesce(per_segment.customers, 0) as customers,
    coalesce(per_segment.revenue_usd, 0) as revenue_usd,
    case
        when totals.total_revenue_usd > 0
            then coalesce(per_segment.revenue_usd, 0) / totals.total_revenue_usd
    end as revenue_share,
    case
        when per_segment.orders > 0 then per_segment.revenue_usd / per_segment.orders
    end as avg_order_value_usd,
    coalesce(per_segment.orders, 0) as orders,
    segment_names.segment_order
from segment_names
cross join totals
left join per_segment on segment_names.rfm_segment = per_segment.rfm_segment
