-- Attribution touches: clicks and human opens (an open with sg_machine_open is a privacy proxy fetching
-- the pixel, not a person), resolved to stitched customers through their normalised email.
select
    events.sg_event_id,
    events.campaign_id,
    events.event as touch_event,
    events.event_at as touch_at,
    email_customers.customer_id
from {{ ref('stg_esp__events') }} as events
inner join {{ ref('int_email_customers') }} as email_customers
    on events.email_normalized = email_customers.email_normalized
where
    events.campaign_id is not null
    and events.event_at is not null
    and (
        events.event = 'click'
        or (events.event = 'open' and not coalesce(events.sg_machine_open, false))
    )
