-- One row: the share of revenue produced by the `high` value tier (the top 20% of buyers by revenue).
with segments as (
    select
        as_of_date,
        value_tier,
        monetary_usd
    from {{ ref('customer_segments') }}
)

select
    max(as_of_date) as as_of_date,
    case
        when sum(monetary_usd) > 0
            then
                cast(sum(case when value_tier = 'high' then monetary_usd else 0 end) as double)
                / cast(sum(monetary_usd) as double)
    end as top_20pct_revenue_share,
    sum(case when value_tier = 'high' then 1 else 0 end) as high_tier_customers,
    sum(case when value_tier <> 'none' then 1 else 0 end) as customers_with_orders,
    sum(case when value_tier = 'high' then monetary_usd else 0 end) as high_tier_revenue_usd,
    sum(monetary_usd) as total_revenue_usd
from segments
