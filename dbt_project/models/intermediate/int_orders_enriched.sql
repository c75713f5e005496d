{{ config(
    materialized=rapport.incremental_on_duckdb(),
    incremental_strategy=rapport.incremental_replace_strategy(),
    unique_key='order_id',
    pre_hook="{{ rapport.orders_list_touched() }}",
    post_hook="{{ rapport.orders_keep_state() }}"
) }}
-- One row per order (latest version) with its stitched customer and USD amounts.
-- usd_per_unit: the order currency's rate on the order's created_at date, else the latest earlier rate;
-- USD is 1. net_revenue_usd = (total - refunded_total) * usd_per_unit for valid orders (paid, fulfilled,
-- partially_refunded) and 0 for the others. The latest earlier rate comes from a daily calendar of each
-- currency's rate in force (an equi-join, the same on every engine; DuckDB's ASOF join is DuckDB-only).
-- Incremental on DuckDB (macros/orders_touched.sql, docs/marts-incremental.md): a day build recomputes only
-- the orders whose row can differ from the last build's (its orders are filtered to them; the rest of this
-- SQL is the full build's) and delete+insert replaces their rows. A plain table on Spark.
{%- set touched = rapport.orders_touched_list() %}

with orders as (
    select *
    from {{ ref('stg_shop__orders') }}
    {%- if touched %}
        where order_id in (select t.order_id from {{ touched }} as t)
    {%- endif %}
),

identities as (
    select
        source,
        source_id,
        customer_id
    from {{ ref('int_customer_ids_assigned') }}
    where is_current and source in ('orders.customer', 'orders.guest_order')
),

fx as (
    select
        rate_date,
        currency,
        usd_per_unit
    from {{ ref('stg_shop__fx_rates') }}
    where usd_per_unit is not null
),

-- every day from a currency's first rate to the last order (or rate) date
fx_days as (
    select
        currency,
        {{ days_between('first_rate_date', 'last_date', 'rate_day') }}
    from (
        select
            fx.currency,
            min(fx.rate_date) as first_rate_date,
            greatest(max(fx.rate_date), max(o.last_order_date)) as last_date
        from fx
        cross join (select max(cast(created_at as date)) as last_order_date from orders) as o
        group by fx.currency
    ) as bounds
),

-- the date of the rate in force on each day: the latest rate_date on or before it
fx_in_force as (
    select
        d.currency,
        d.rate_day,
        max(fx.rate_date) over (
            partition by d.currency order by d.rate_day rows between unbounded preceding and current row
        ) as rate_date
    from fx_days as d
    left join fx on d.currency = fx.currency and d.rate_day = fx.rate_date
),

with_rates as (
    select
        o.*,
        case when o.currency = 'USD' then 1 else fx.usd_per_unit end as usd_per_unit,
        fx.rate_date as fx_rate_date
    from orders as o
    left join fx_in_force as f
        on o.currency = f.currency and cast(o.created_at as date) = f.rate_day
    left join fx on f.currency = fx.currency and f.rate_date = fx.rate_date
)

select
    o.order_id,
    o.customer_id as shop_customer_id,
    i.customer_id,
    o.is_guest,
    o.status,
    o.status in ('paid', 'fulfilled', 'partially_refunded') as is_valid,
    o.currency,
    o.subtotal,
    o.discount_total,
    o.shipping_total,
    o.tax_total,
    o.total,
    o.refunded_total,
    o.total - o.refunded_total as net_total,
    cast(o.usd_per_unit as decimal(18, 8)) as usd_per_unit,
    case when o.currency = 'USD' then null else o.fx_rate_date end as fx_rate_date,
    cast(
        case
            when o.status in ('paid', 'fulfilled', 'partially_refunded')
                then (o.total - o.refunded_total) * o.usd_per_unit
            else 0
        end as decimal(18, 4)
    ) as net_revenue_usd,
    o.created_at,
    o.updated_at,
    o.cancelled_at,
    o.discount_code,
    o.utm_source,
    o.utm_medium,
    o.utm_campaign,
    o.email,
    o.phone,
    o.email_normalized,
    o.phone_normalized
from with_rates as o
left join identities as i
    on
        i.source = case when o.is_guest then 'orders.guest_order' else 'orders.customer' end
        and i.source_id = cast(case when o.is_guest then o.order_id else o.customer_id end as {{ dbt.type_string() }})
