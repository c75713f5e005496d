-- Holdout counts per campaign (grain 'campaign', rfm_segment null) and per campaign and pre-send
-- rfm_segment (grain 'campaign_segment'): the inputs of the lift statistics (int_campaign_lift_stats).
with members as (
    select
        campaign_id,
        pre_send_rfm_segment,
        audience_group,
        converted,
        window_revenue_usd,
        counts_revenue
    from {{ ref('int_campaign_members') }}
),

grains as (
    select
        'campaign' as grain,
        campaign_id,
        cast(null as varchar) as rfm_segment,
        audience_group,
        converted,
        window_revenue_usd,
        counts_revenue
    from members
    union all
    select
        'campaign_segment' as grain,
        campaign_id,
        pre_send_rfm_segment as rfm_segment,
        audience_group,
        converted,
        window_revenue_usd,
        counts_revenue
    from members
)

select
    grain,
    campaign_id,
    rfm_segment,
    count(case when audience_group = 'treatment' then 1 end) as treatment_size,
    count(case when audience_group = 'control' then 1 end) as control_size,
    count(case when audience_group = 'treatment' and converted then 1 end) as treatment_conversions,
    count(case when audience_group = 'control' and converted then 1 end) as control_conversions,
    coalesce(sum(case when audience_group = 'treatment' and counts_revenue then window_revenue_usd end), 0)
        as treatment_revenue_usd,
    coalesce(sum(case when audience_group = 'control' and counts_revenue then window_revenue_usd end), 0)
        as control_revenue_usd
from grains
group by grain, campaign_id, rfm_segment
