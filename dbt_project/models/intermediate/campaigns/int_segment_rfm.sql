-- RFM inputs, scores, segment, lifecycle stage and value tier of every customer with at least one valid
-- order, per scope (see int_segment_scopes). Customers without valid orders have no row here: the marts
-- give them null scores, 'No Purchases', 'prospect' and 'none'.
--
-- The scoring rules are the macros in macros/segments.sql: r_score = ceil(5 * cume_dist()) over
-- recency_days descending, m_score the same over monetary_usd ascending, computed in integers from
-- cume_dist()'s row counts so ties share a score and the result does not depend on row order.
--
-- How (cost): a scope counts the orders created before its cutoff, so its orders are a prefix of each
-- customer's orders in time. Running totals along each customer's orders, taken at the customer's last
-- order before each cutoff, are that scope's inputs: one pass over the orders instead of one per scope.

-- each scope with its cutoff's rank among the distinct cutoffs in time order (two scopes may share a cutoff,
-- hence a rank)
with scopes as (
    select
        scope_id,
        as_of_date,
        cutoff_at,
        dense_rank() over (order by cutoff_at) as cutoff_rank
    from {{ ref('int_segment_scopes') }}
),

-- the distinct cutoffs, each with the instant after the previous one: the orders created in
-- [previous_cutoff_at, cutoff_at) count from this cutoff on
cutoffs as (
    select
        cutoff_at,
        cutoff_rank,
        lag(cutoff_at) over (order by cutoff_at) as previous_cutoff_at
    from (
        select distinct
            cutoff_at,
            cutoff_rank
        from scopes
    ) as distinct_cutoffs
),

valid_orders as (
    {{ valid_customer_orders() }}
),

-- each valid order with the first cutoff after it (orders at or after the last cutoff count nowhere)
orders_by_first_cutoff as (
    select
        valid_orders.order_id,
        valid_orders.customer_id,
        valid_orders.created_at,
        valid_orders.net_revenue_usd,
        cutoffs.cutoff_rank as first_cutoff_rank
    from valid_orders
    inner join cutoffs
        on
            valid_orders.created_at < cutoffs.cutoff_at
            and (cutoffs.previous_cutoff_at is null or valid_orders.created_at >= cutoffs.previous_cutoff_at)
),

-- running totals along each customer's orders in (created_at, order_id) order, the order the rules use
-- for the first order (smallest order_id at the same instant) and the previous one
running_orders as (
    select
        customer_id,
        created_at,
        first_cutoff_rank,
        count(*) over orders_so_far as frequency,
        sum(net_revenue_usd) over orders_so_far as monetary_usd,
        first_value(created_at) over orders_so_far as first_order_at,
        first_value(net_revenue_usd) over orders_so_far as first_order_revenue_usd,
        lag(created_at) over customer_orders_in_time as previous_order_at,
        lead(first_cutoff_rank) over customer_orders_in_time as next_order_first_cutoff_rank
    from orders_by_first_cutoff
    window
        customer_orders_in_time as (partition by customer_id order by created_at, order_id),
        orders_so_far as (
            partition by customer_id order by created_at, order_id
            rows between unbounded preceding and current row
        )
),

-- the customer's last order before a cutoff: its totals hold for every cutoff from its own up to, not
-- including, the first cutoff of the customer's next order
last_orders_before_cutoffs as (
    select *
    from running_orders
    where next_order_first_cutoff_rank is null or next_order_first_cutoff_rank > first_cutoff_rank
),

customer_orders as (
    select
        scopes.scope_id,
        scopes.as_of_date,
        last_orders.customer_id,
        last_orders.frequency,
        last_orders.monetary_usd,
        last_orders.first_order_at,
        last_orders.created_at as last_order_at,
        last_orders.previous_order_at,
        last_orders.first_order_revenue_usd
    from last_orders_before_cutoffs as last_orders
    -- straight to the scopes by rank: no second join of every (scope, customer) row on cutoff_at
    inner join scopes
        on
            last_orders.first_cutoff_rank <= scopes.cutoff_rank
            and (
                last_orders.next_order_first_cutoff_rank is null
                or last_orders.next_order_first_cutoff_rank > scopes.cutoff_rank
            )
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

-- buyers per scope and recency: thousands of rows, so the recency ranks need no sort of every buyer
recency_counts as (
    select
        scope_id,
        recency_days,
        count(*) as buyers_at_recency
    from day_counts
    group by scope_id, recency_days
),

recency_ranks as (
    select
        scope_id,
        recency_days,
        cast(sum(buyers_at_recency) over (partition by scope_id) as bigint) as buyers,
        cast(sum(buyers_at_recency) over (
            partition by scope_id order by recency_days desc
            rows between unbounded preceding and current row
        ) as bigint) as recency_rank_k
    from recency_counts
),

-- cume_dist()'s row counts over monetary_usd both ways from one ordering (one sort per scope, not two):
-- ascending, the buyers up to and including the peers are a running count whose range frame ends after the
-- peers; descending, they are the buyers not strictly before = buyers + 1 - rank()
cumulative_counts as (
    select
        day_counts.*,
        recency_ranks.buyers,
        recency_ranks.recency_rank_k,
        count(*) over (
            partition by day_counts.scope_id order by day_counts.monetary_usd asc
            range between unbounded preceding and current row
        ) as monetary_rank_k,
        recency_ranks.buyers + 1 - rank() over (
            partition by day_counts.scope_id order by day_counts.monetary_usd asc
        ) as monetary_desc_rank_k
    from day_counts
    inner join recency_ranks
        on
            day_counts.scope_id = recency_ranks.scope_id
            and day_counts.recency_days = recency_ranks.recency_days
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
