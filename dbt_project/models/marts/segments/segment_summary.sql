-- One row per rfm_segment (all eleven, empty ones with zeros, so dashboards keep a stable shape).
with segment_names as (
    select
        1 as segment_order,
        'Champions' as rfm_segment
    union all
    select
        2 as segment_order,
        'Loyal Customers' as rfm_segment
    union all
    select
        3 as segment_order,
        'Potential Loyalists' as rfm_segment
    union all
    select
        4 as segment_order,
        'New Customers' as rfm_segment
    union all
    select
        5 as segment_order,
        'Promising' as rfm_segment
    union all
    select
        6 as segment_order,
        'Need Attention' as rfm_segment
    union all
    select
        7 as segment_order,
        'About to Sleep' as rfm_segment
    union all
    select
        8 as segment_order,
        'At Risk' as rfm_segment
    union all
    select
        9 as segment_order,
        'Cannot Lose Them' as rfm_segment
    union all
    select
        10 as segment_order,
        'Hibernating' as rfm_segment
    union all
    select
        11 as segment_order,
        'No Purchases' as rfm_segment
),

segments as (
    select
        rfm_segment,
        frequency,
        monetary_usd,
        as_of_date
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
    select
        sum(monetary_usd) as total_revenue_usd,
        max(as_of_date) as as_of_date
    from segments
)

select
    segment_names.rfm_segment,
    totals.as_of_date,
    coalesce(per_segment.customers, 0) as customers,
    coalesce(per_segment.revenue_usd, 0) as revenue_usd,
    case
        when totals.total_revenue_usd > 0
            then cast(coalesce(per_segment.revenue_usd, 0) as double) / cast(totals.total_revenue_usd as double)
    end as revenue_share,
    case
        when per_segment.orders > 0 then cast(per_segment.revenue_usd as double) / per_segment.orders
    end as avg_order_value_usd,
    coalesce(per_segment.orders, 0) as orders,
    segment_names.segment_order
from segment_names
cross join totals
left join per_segment on segment_names.rfm_segment = per_segment.rfm_segment
