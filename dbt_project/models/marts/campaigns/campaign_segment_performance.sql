-- One row per campaign and rfm_segment, the segment taken as of the day before the send from orders
-- created before send_at only (point in time), with the audience, conversion and lift columns of
-- campaign_performance. Lift columns are null where the segment has no control members.
with campaigns as (
    select
        campaign_id,
        name,
        send_at
    from {{ ref('int_campaigns') }}
),

lift as (
    select *
    from {{ ref('int_campaign_lift_stats') }}
    where grain = 'campaign_segment'
),

measures as (
    select
        lift.campaign_id,
        lift.rfm_segment,
        campaigns.name,
        campaigns.send_at,
        cast(cast(campaigns.send_at as date) - interval 1 day as date) as segment_as_of_date,
        lift.treatment_size,
        lift.control_size,
        lift.control_size > 0 as has_control_group,
        lift.treatment_conversions,
        lift.control_conversions,
        lift.treatment_conversion_rate,
        lift.control_conversion_rate,
        lift.lift_abs,
        lift.lift_rel,
        lift.lift_ci_low,
        lift.lift_ci_high,
        lift.p_value,
        lift.lift_abs * lift.treatment_size as incremental_conversions,
        case when lift.treatment_size > 0 then lift.treatment_revenue_usd / lift.treatment_size end
            as revenue_per_recipient_treatment_usd,
        case when lift.control_size > 0 then lift.control_revenue_usd / lift.control_size end
            as revenue_per_recipient_control_usd
    from lift
    inner join campaigns on lift.campaign_id = campaigns.campaign_id
)

select
    *,
    case
        when has_control_group and treatment_size > 0
            then (revenue_per_recipient_treatment_usd - revenue_per_recipient_control_usd) * treatment_size
    end as incremental_revenue_usd
from measures
