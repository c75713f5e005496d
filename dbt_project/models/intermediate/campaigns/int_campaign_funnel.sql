-- Delivery and engagement counts per campaign, as unique recipients (distinct lower(trim(email))).
-- bounced counts bounce events of either type (bounce, blocked); unique_human_opens leaves out opens
-- flagged sg_machine_open; unsubscribes counts unsubscribe and group_unsubscribe events.
with events as (
    select
        campaign_id,
        event,
        coalesce(sg_machine_open, false) as is_machine_open,
        lower(trim(email)) as recipient_key
    from {{ ref('stg_esp__events') }}
    where campaign_id is not null and email is not null
)

select
    campaign_id,
    count(distinct case when event = 'processed' then recipient_key end) as processed,
    count(distinct case when event = 'delivered' then recipient_key end) as delivered,
    count(distinct case when event = 'bounce' then recipient_key end) as bounced,
    count(distinct case when event = 'dropped' then recipient_key end) as dropped,
    count(distinct case when event = 'deferred' then recipient_key end) as deferred,
    count(distinct case when event = 'open' then recipient_key end) as unique_opens,
    count(distinct case when event = 'open' and not is_machine_open then recipient_key end)
        as unique_human_opens,
    count(distinct case when event = 'open' and is_machine_open then recipient_key end)
        as unique_machine_opens,
    count(distinct case when event = 'click' then recipient_key end) as unique_clicks,
    count(distinct case when event in ('unsubscribe', 'group_unsubscribe') then recipient_key end)
        as unsubscribes,
    count(distinct case when event = 'spamreport' then recipient_key end) as spam_reports
from events
group by campaign_id
