-- RFM inputs, scores, segment, lifecycle stage and value tier of every customer with at least one valid
-- order, per scope (see int_segment_scopes). Customers without valid orders have no row here: the marts
-- give them null scores, 'No Purchases', 'prospect' and 'none'.
--
-- The scoring rules are the macros in macros/segments.sql: r_score = ceil(5 * cume_dist()) over
-- recency_days descending, m_score the same over monetary_usd ascending, computed in integers from
-- cume_dist()'s row counts so ties share a score and the result does not depend on row order.
with scopes as (
    select
        scope_id,
        as_of_date,
        cutoff_at
    from {{ ref('int_segment_scopes') }}
),

valid_orders as (
    {{ valid_customer_orders() }}
),

scoped_orders as (
    select
        scopes.scope_id,
        scopes.as_of_date,
        valid_orders.order_id,
        valid_orders.customer_id,
        valid_orders.created_at,
        valid_orders.net_revenue_usd
    from scopes
    inner join valid_orders
        on scopes.cutoff_at > valid_orders.created_at
),

sequenced_orders as (
    select
        *,
        lag(created_at) over (
            partition by scope_id, customer_id order by created_at, order_id
        ) as previous_order_at,
        row_number() over (
            partition by scope_id, customer_id order by created_at desc, order_id desc
        ) as newest_first,
        row_number() over (
            partition by scope_id, customer_id order by created_at asc, order_id asc
        ) as oldest_first
    from scoped_orders
),

customer_orders as (
    select
        scope_id,
        as_of_date,
        customer_id,
        count(*) as frequency,
        sum(net_revenue_usd) as monetary_usd,
        min(created_at) as first_order_at,
        max(created_at) as last_order_at,
        max(case when newest_first = 1 then previous_order_at end) as previous_order_at,
        max(case when oldest_first = 1 then net_revenue_usd end) as first_order_revenue_usd
    from sequenced_orders
    group by scope_id, as_of_date, customer_id
),

day_counts as (
    select
        *,
        {{ dbt.datediff('cast(last_order_at as date)', 'as_of_date', 'day') }} as recency_days,
        {{ dbt.datediff('cast(first_order_at as date)', 'as_of_date', 'day') }} as days_since_first_order,
        {{ dbt.datediff('cast(previous_order_at as date)', 'cast(last_order_at as date)', 'day') }}
            as gap_before_last_order_days
    from customer_orders
),

cumulative_counts as (
    select
        *,
        count(*) over (partition by scope_id) as buyers,
        count(*) over (
            partition by scope_id order by recency_days desc
            range between unbounded preceding and current row
        ) as recency_rank_k,
        count(*) over (
            partition by scope_id order by monetary_usd asc
            range between unbounded preceding and current row
        ) as monetary_rank_k,
        count(*) over (
            partition by scope_id order by monetary_usd desc
            range between unbounded preceding and current row
        ) as monetary_desc_rank_k
    from day_counts
),

scored as (
    select
        *,
        {{ rank_score('recency_rank_k', 'buyers') }} as r_score,
        {{ frequency_score('frequency') }} as f_score,
        {{ rank_score('monetary_rank_k', 'buyers') }} as m_score
    from cumulative_counts
)

select
    scope_id,
    as_of_date,
    customer_id,
    recency_days,
    frequency,
    monetary_usd,
    first_order_revenue_usd,
    first_order_at,
    last_order_at,
    previous_order_at,
    days_since_first_order,
    gap_before_last_order_days,
    r_score,
    f_score,
    m_score,
    {{ rfm_segment('r_score', 'f_score') }} as rfm_segment,
    {{ lifecycle_stage('days_since_first_order', 'recency_days', 'gap_before_last_order_days') }}
        as lifecycle_stage,
    {{ value_tier('monetary_desc_rank_k', 'buyers') }} as value_tier
from scored
