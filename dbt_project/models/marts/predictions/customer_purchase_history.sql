-- One row per customer with at least one valid order created on or before the as-of date: the purchase
-- summary a buy-till-you-die model is fitted on (rapport.predictions), point in time like the segments.
-- Times are in days (fractional, from the order timestamps); the observation ends with the as-of day.
--   repeat_orders (x)                 valid orders after the first one
--   days_first_to_last_order (t_x)    first valid order to the last one
--   days_first_order_to_cutoff (T)    first valid order to the end of the as-of day
--   avg_repeat_order_value_usd        mean net USD of the repeat orders (Gamma-Gamma's spend input)
with as_of_scope as (
    select
        scope_id,
        cutoff_at
    from {{ ref('int_segment_scopes') }}
    where scope_id = 'as_of'
),

customer_orders as (
    select
        rfm.customer_id,
        rfm.as_of_date,
        rfm.frequency as valid_orders,
        rfm.monetary_usd as revenue_usd,
        rfm.first_order_revenue_usd,
        rfm.first_order_at,
        rfm.last_order_at,
        as_of_scope.cutoff_at
    from {{ ref('int_segment_rfm') }} as rfm
    inner join as_of_scope on rfm.scope_id = as_of_scope.scope_id
)

select
    customer_id,
    as_of_date,
    valid_orders,
    valid_orders - 1 as repeat_orders,
    cast({{ dbt.datediff('first_order_at', 'last_order_at', 'second') }} as double) / 86400
        as days_first_to_last_order,
    cast({{ dbt.datediff('first_order_at', 'cutoff_at', 'second') }} as double) / 86400
        as days_first_order_to_cutoff,
    revenue_usd,
    first_order_revenue_usd,
    case
        when valid_orders > 1
            then cast(revenue_usd - first_order_revenue_usd as double) / (valid_orders - 1)
    end as avg_repeat_order_value_usd,
    first_order_at,
    last_order_at
from customer_orders
