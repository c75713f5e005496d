-- The per-segment rows of a campaign add up to the campaign's audience and conversions, and the
-- audience sizes match the audience file (distinct recipients per group).
with by_segment as (
    select
        campaign_id,
        sum(treatment_size) as treatment_size,
        sum(control_size) as control_size,
        sum(treatment_conversions) as treatment_conversions,
        sum(control_conversions) as control_conversions
    from {{ ref('campaign_segment_performance') }}
    group by campaign_id
),

audience as (
    select
        campaign_id,
        count(distinct case when audience_group = 'treatment' then lower(trim(email)) end) as treatment_size,
        count(distinct case when audience_group = 'control' then lower(trim(email)) end) as control_size
    from {{ ref('stg_esp__audiences') }}
    where email is not null
    group by campaign_id
)

select campaigns.campaign_id
from {{ ref('campaign_performance') }} as campaigns
left join by_segment on campaigns.campaign_id = by_segment.campaign_id
left join audience on campaigns.campaign_id = audience.campaign_id
where
    campaigns.treatment_size <> coalesce(by_segment.treatment_size, 0)
    or campaigns.control_size <> coalesce(by_segment.control_size, 0)
    or coalesce(campaigns.treatment_conversions, 0) <> coalesce(by_segment.treatment_conversions, 0)
    or coalesce(campaigns.control_conversions, 0) <> coalesce(by_segment.control_conversions, 0)
    or campaigns.treatment_size <> coalesce(audience.treatment_size, 0)
    or campaigns.control_size <> coalesce(audience.control_size, 0)
