-- One row per campaign and rfm_segment, the segment taken as of the day before the send from orders
-- created before send_at only (point in time), with the audience, conversion, lift, MDE, revenue and
-- CUPED columns of campaign_performance (no q-value or verdict: segments are a breakdown, not separate
-- tests). Lift columns are null where the segment has no control (or no treated) members.
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
)

select
    lift.campaign_id,
    lift.rfm_segment,
    campaigns.name,
    campaigns.send_at,
    cast({{ dbt.dateadd('day', -1, 'campaigns.send_at') }} as date) as segment_as_of_date,
    lift.treatment_size,
    lift.control_size,
    lift.control_size > 0 as has_control_group,
    {%- for column in campaign_lift_columns() %}
        lift.{{ column }},
    {%- endfor %}
    lift.confidence_level
from lift
inner join campaigns on lift.campaign_id = campaigns.campaign_id
