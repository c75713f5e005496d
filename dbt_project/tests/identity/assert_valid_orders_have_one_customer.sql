-- Every valid order belongs to exactly one customer of marts.customers, and order counts reconcile.
with valid_orders as (
    select
        o.order_id,
        o.customer_id
    from {{ ref('stg_shop__orders') }} as s
    left join {{ ref('int_orders_enriched') }} as o on s.order_id = o.order_id
    where s.status in ('paid', 'fulfilled', 'partially_refunded')
),

matches as (
    select
        v.order_id,
        count(c.customer_id) as customers
    from valid_orders as v
    left join {{ ref('customers') }} as c on v.customer_id = c.customer_id
    group by v.order_id
)

select
    order_id,
    customers as problem
from matches
where customers != 1
union all
select
    null as order_id,
    abs((select sum(order_count) from {{ ref('customers') }}) - (select count(*) from valid_orders)) as problem
where (select sum(order_count) from {{ ref('customers') }}) != (select count(*) from valid_orders)
