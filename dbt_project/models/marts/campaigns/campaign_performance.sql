-- One row per campaign: audience, delivery funnel (unique recipients), last-touch attribution and
-- holdout lift. Lift, control and incremental columns are null for a campaign without a control group;
-- roi is also null without a positive cost.
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
        campaigns.campaign_id,
        campaigns.name,
        campaigns.subject,
        campaigns.send_at,
        campaigns.target_segment,
        campaigns.holdout_pct,
        coalesce(lift.treatment_size, 0) as treatment_size,
        coalesce(lift.control_size, 0) as control_size,
        coalesce(lift.control_size, 0) > 0 as has_control_group,
        coalesce(funnel.processed, 0) as processed,
        coalesce(funnel.delivered, 0) as delivered,
        coalesce(funnel.bounced, 0) as bounced,
        coalesce(funnel.dropped, 0) as dropped,
        coalesce(funnel.deferred, 0) as deferred,
        coalesce(funnel.unique_opens, 0) as unique_opens,
        coalesce(funnel.unique_human_opens, 0) as unique_human_opens,
        coalesce(funnel.unique_machine_opens, 0) as unique_machine_opens,
        coalesce(funnel.unique_clicks, 0) as unique_clicks,
        coalesce(funnel.unsubscribes, 0) as unsubscribes,
        coalesce(funnel.spam_reports, 0) as spam_reports,
        coalesce(attribution.attributed_orders, 0) as attributed_orders,
        coalesce(attribution.attributed_revenue_usd, 0) as attributed_revenue_usd,
        lift.treatment_conversions,
        lift.control_conversions,
        lift.treatment_conversion_rate,
        lift.control_conversion_rate,
        lift.lift_abs,
        lift.lift_rel,
        lift.lift_ci_low,
        lift.lift_ci_high,
        lift.p_value,
        lift.treatment_revenue_usd,
        lift.control_revenue_usd,
        campaigns.cost,
        campaigns.cost_currency,
        campaigns.cost_usd
    from campaigns
    left join funnel on campaigns.campaign_id = funnel.campaign_id
    left join attribution on campaigns.campaign_id = attribution.campaign_id
    left join lift on campaigns.campaign_id = lift.campaign_id
),

per_recipient as (
    select
        *,
        case when delivered > 0 then unique_human_opens * 1.0 / delivered end as open_rate,
        case when delivered > 0 then unique_clicks * 1.0 / delivered end as click_rate,
        case when unique_human_opens > 0 then unique_clicks * 1.0 / unique_human_opens end as click_to_open_rate,
        lift_abs * treatment_size as incremental_conversions,
        case when treatment_size > 0 then treatment_revenue_usd / treatment_size end
            as revenue_per_recipient_treatment_usd,
        case when control_size > 0 then control_revenue_usd / control_size end
            as revenue_per_recipient_control_usd
    from measures
),

incremental as (
    select
        *,
        case
            when has_control_group and treatment_size > 0
                then (revenue_per_recipient_treatment_usd - revenue_per_recipient_control_usd) * treatment_size
        end as incremental_revenue_usd
    from per_recipient
)

select
    campaign_id,
    name,
    subject,
    send_at,
    target_segment,
    holdout_pct,
    treatment_size,
    control_size,
    has_control_group,
    processed,
    delivered,
    bounced,
    dropped,
    deferred,
    unique_opens,
    unique_human_opens,
    unique_machine_opens,
    unique_clicks,
    unsubscribes,
    spam_reports,
    open_rate,
    click_rate,
    click_to_open_rate,
    attributed_orders,
    attributed_revenue_usd,
    treatment_conversions,
    control_conversions,
    treatment_conversion_rate,
    control_conversion_rate,
    lift_abs,
    lift_rel,
    lift_ci_low,
    lift_ci_high,
    p_value,
    incremental_conversions,
    revenue_per_recipient_treatment_usd,
    revenue_per_recipient_control_usd,
    incremental_revenue_usd,
    cost,
    cost_currency,
    cost_usd,
    case
        when incremental_revenue_usd is not null and cost_usd > 0
            then (incremental_revenue_usd - cost_usd) / cost_usd
    end as roi
from incremental
