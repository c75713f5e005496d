-- customer_purchase_history holds exactly the customers the segments count as buyers, with the same orders
-- and revenue, and consistent BTYD inputs (0 <= t_x <= T; t_x = 0 and no repeat value with one order).
with history as (
    select * from {{ ref('customer_purchase_history') }}
),

buyers as (
    select
        customer_id,
        frequency,
        monetary_usd
    from {{ ref('customer_segments') }}
    where frequency > 0
),

unmatched as (
    select coalesce(history.customer_id, buyers.customer_id) as customer_id
    from history
    full outer join buyers on history.customer_id = buyers.customer_id
    where
        history.customer_id is null
        or buyers.customer_id is null
        or history.valid_orders <> buyers.frequency
        or abs(history.revenue_usd - buyers.monetary_usd) > 0.0001
),

inconsistent as (
    select customer_id
    from history
    where
        repeat_orders <> valid_orders - 1
        or days_first_to_last_order < 0
        or days_first_to_last_order > days_first_order_to_cutoff
        or (repeat_orders = 0 and (days_first_to_last_order <> 0 or avg_repeat_order_value_usd is not null))
        or (repeat_orders > 0 and avg_repeat_order_value_usd is null)
)

select customer_id from unmatched
union all
select customer_id from inconsistent
