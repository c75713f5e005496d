-- Last-touch attribution: one row per credited valid order. A valid order placed by the same stitched
-- customer within `attribution_window_hours` after a touch (touch_at <= created_at <= touch_at + window,
-- both ends inclusive: an order exactly 120 hours after the touch is credited) is credited wholly to the
-- campaign of the latest such touch. Each order is credited at most once, so the attributed revenue can
-- never exceed the revenue of the attributed orders. Ties between touches at the same second go to the
-- click, then to the smallest campaign_id (deterministic).
{%- set window_hours = var('attribution_window_hours', 120) %}

with valid_orders as (
    {{ valid_customer_orders() }}
),

touches as (
    select
        sg_event_id,
        campaign_id,
        touch_event,
        touch_at,
        customer_id
    from {{ ref('int_campaign_touches') }}
),

candidate_touches as (
    select
        valid_orders.order_id,
        valid_orders.customer_id,
        valid_orders.created_at as order_created_at,
        valid_orders.net_revenue_usd,
        touches.campaign_id,
        touches.touch_event,
        touches.touch_at,
        touches.sg_event_id,
        row_number() over (
            partition by valid_orders.order_id
            order by
                touches.touch_at desc,
                case when touches.touch_event = 'click' then 0 else 1 end,
                touches.campaign_id asc,
                touches.sg_event_id asc
        ) as latest_first
    from valid_orders
    inner join touches
        on
            valid_orders.customer_id = touches.customer_id
            and valid_orders.created_at >= touches.touch_at
            and valid_orders.created_at <= {{ dbt.dateadd('hour', window_hours, 'touches.touch_at') }}
)

select
    order_id,
    customer_id,
    order_created_at,
    net_revenue_usd,
    campaign_id,
    touch_event,
    touch_at,
    sg_event_id
from candidate_touches
where latest_first = 1
