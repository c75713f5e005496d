-- One row per campaign: audience, delivery funnel (unique recipients), last-touch attribution, holdout
-- lift and the campaign decisions (marts.md "Campaign decisions"): MDE, Benjamini-Hochberg q-value over
-- every campaign with a control group, verdict, revenue and ROI intervals, CUPED. Lift, control,
-- incremental and decision columns are null for a campaign without a control group; roi and its
-- interval are also null without a positive cost.
{%- set meaningful_lift = var('meaningful_lift_abs', 0.02) %}

with campaigns as (
    select * from {{ ref('int_campaigns') }}
),

funnel as (
    select * from {{ ref('int_campaign_funnel') }}
),

attribution as (
    select
        campaign_id,
        count(*) as attributed_orders,
        sum(net_revenue_usd) as attributed_revenue_usd
    from {{ ref('int_order_attribution') }}
    group by campaign_id
),

lift as (
    select *
    from {{ ref('int_campaign_lift_stats') }}
    where grain = 'campaign'
),

measures as (
    select
        {%- for column in campaign_attributes() %}
            campaigns.{{ column }},
        {%- endfor %}
        coalesce(lift.treatment_size, 0) as treatment_size,
        coalesce(lift.control_size, 0) as control_size,
        coalesce(lift.control_size, 0) > 0 as has_control_group,
        {%- for column in campaign_funnel_counts() %}
            coalesce(funnel.{{ column }}, 0) as {{ column }},
        {%- endfor %}
        coalesce(attribution.attributed_orders, 0) as attributed_orders,
        coalesce(attribution.attributed_revenue_usd, 0) as attributed_revenue_usd,
        {%- for column in campaign_lift_columns() %}
            lift.{{ column }},
        {%- endfor %}
        campaigns.cost,
        campaigns.cost_currency,
        campaigns.cost_usd
    from campaigns
    left join funnel on campaigns.campaign_id = funnel.campaign_id
    left join attribution on campaigns.campaign_id = attribution.campaign_id
    left join lift on campaigns.campaign_id = lift.campaign_id
),

-- Benjamini-Hochberg over every campaign with a control group (the campaigns tested)
tested as (
    select
        campaign_id,
        p_value,
        row_number() over (order by p_value, campaign_id) as p_rank,
        count(*) over () as tests
    from measures
    where has_control_group and p_value is not null
),

q_values as (
    select
        campaign_id,
        {{ benjamini_hochberg_q('p_value', 'p_rank', 'tests') }} as q_value
    from tested
),

decided as (
    select
        measures.*,
        q_values.q_value,
        case
            when measures.lift_ci_low is null then null
            when measures.lift_ci_low > 0 then 'increased'
            when measures.lift_ci_high < 0 then 'decreased'
            -- no conversions in either group (mde_abs null): the test cannot show what it could detect
            when measures.mde_abs is null or measures.mde_abs > {{ meaningful_lift }} then 'too small to tell'
            else 'no detectable effect'
        end as verdict
    from measures
    left join q_values on measures.campaign_id = q_values.campaign_id
)

select
    {%- for column in campaign_attributes() %}
        {{ column }},
    {%- endfor %}
    treatment_size,
    control_size,
    has_control_group,
    {%- for column in campaign_funnel_counts() %}
        {{ column }},
    {%- endfor %}
    case when delivered > 0 then cast(unique_human_opens as double) / delivered end as open_rate,
    case when delivered > 0 then cast(unique_clicks as double) / delivered end as click_rate,
    case when unique_human_opens > 0 then cast(unique_clicks as double) / unique_human_opens end as click_to_open_rate,
    attributed_orders,
    attributed_revenue_usd,
    {%- for column in campaign_lift_columns() %}
        {{ column }},
    {%- endfor %}
    q_value,
    verdict,
    cost,
    cost_currency,
    cost_usd,
    case when cost_usd > 0 then (incremental_revenue_usd - cost_usd) / cost_usd end as roi,
    case when cost_usd > 0 then (incremental_revenue_ci_low - cost_usd) / cost_usd end as roi_ci_low,
    case when cost_usd > 0 then (incremental_revenue_ci_high - cost_usd) / cost_usd end as roi_ci_high
from decided
