-- Delivery and engagement counts per campaign, as unique recipients (distinct lower(trim(email))).
-- bounced counts bounce events of either type (bounce, blocked); unique_human_opens leaves out opens
-- flagged sg_machine_open; unsubscribes counts unsubscribe and group_unsubscribe events.
--
-- How (cost): each count is the recipients with at least one event matching its condition. One group-by
-- over the events keeps, per campaign and recipient, a bit per condition (bit_or of the events' bits);
-- eleven count(distinct ...) would build eleven hash tables over all events.
{%- set counts = [
    ('processed', "event = 'processed'"),
    ('delivered', "event = 'delivered'"),
    ('bounced', "event = 'bounce'"),
    ('dropped', "event = 'dropped'"),
    ('deferred', "event = 'deferred'"),
    ('unique_opens', "event = 'open'"),
    ('unique_human_opens', "event = 'open' and not is_machine_open"),
    ('unique_machine_opens', "event = 'open' and is_machine_open"),
    ('unique_clicks', "event = 'click'"),
    ('unsubscribes', "event in ('unsubscribe', 'group_unsubscribe')"),
    ('spam_reports', "event = 'spamreport'"),
] %}

with events as (
    select
        campaign_id,
        event,
        coalesce(sg_machine_open, false) as is_machine_open,
        lower(trim(email)) as recipient_key
    from {{ ref('stg_esp__events') }}
    where campaign_id is not null and email is not null
),

-- bit i set: the recipient has an event matching the i-th condition above
recipient_flags as (
    select
        campaign_id,
        recipient_key,
        bit_or(
            {%- for name, condition in counts %}
                {{ '+ ' if not loop.first }}case when {{ condition }} then {{ 2 ** loop.index0 }} else 0 end
            {%- endfor %}
        ) as flags
    from events
    group by campaign_id, recipient_key
)

select
    campaign_id,
    {%- for name, condition in counts %}
        count(case when flags & {{ 2 ** loop.index0 }} <> 0 then 1 end) as {{ name }}
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
from recipient_flags
group by campaign_id
