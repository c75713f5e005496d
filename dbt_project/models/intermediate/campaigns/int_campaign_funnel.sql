-- Delivery and engagement counts per campaign, as unique recipients (distinct lower(trim(email))).
-- bounced counts bounce events of either type (bounce, blocked); unique_human_opens leaves out opens
-- flagged sg_machine_open; unsubscribes counts unsubscribe and group_unsubscribe events.
--
-- How (cost): each count is the recipients with at least one event matching its condition, which
-- int_campaign_recipient_flags keeps as a bit per condition and recipient (incremental on DuckDB): 25 rows
-- from one pass over the (campaign, recipient) pairs, not a group-by of every event each day.

select
    campaign_id,
    {%- for name in campaign_funnel_counts() %}
        count(case when flags & {{ 2 ** loop.index0 }} <> 0 then 1 end) as {{ name }}
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
from {{ ref('int_campaign_recipient_flags') }}
group by campaign_id
