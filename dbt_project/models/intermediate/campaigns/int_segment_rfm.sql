-- RFM inputs, scores, segment, lifecycle stage and value tier of every customer with at least one valid
-- order, per scope (see int_segment_scopes). Customers without valid orders have no row here: the marts
-- give them null scores, 'No Purchases', 'prospect' and 'none'.
--
-- Scores are rank based: r_score = ceil(5 * cume_dist()) over recency_days descending, m_score the same
-- over monetary_usd ascending. cume_dist() of a row is k / n with k = rows ordered up to and including its
-- peers; we compute ceil(5 * k / n) in integer arithmetic ((5k + n - 1) // n) so no floating-point
-- rounding can move a customer across a score boundary. Ties share k, hence the same score: the result
-- does not depend on row order (deterministic under ties).
{%- set f_bins = var('rfm_frequency_bins', [1, 2, 3, 4, 6]) %}
{%- set new_days = var('lifecycle_new_days', 30) %}
{%- set active_days = var('lifecycle_active_days', 90) %}
{%- set churn_days = var('lifecycle_churn_days', 180) %}
{%- set reactivation_gap_days = var('lifecycle_reactivation_gap_days', 180) %}
{%- set high_share = var('value_tier_high_share', 0.2) %}
{%- set mid_share = var('value_tier_mid_share', 0.3) %}

with scopes as (
    select
        scope_id,
        as_of_date,
        cutoff_at
    from {{ ref('int_segment_scopes') }}
),

valid_orders as (
    select
        order_id,
        customer_id,
        created_at,
        coalesce(net_revenue_usd, 0) as net_revenue_usd
    from {{ ref('int_orders_enriched') }}
    where is_valid and customer_id is not null and created_at is not null
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
        ) as newest_first
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
        max(case when newest_first = 1 then previous_order_at end) as previous_order_at
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
        cast({{ int_div('5 * recency_rank_k + buyers - 1', 'buyers') }} as integer) as r_score,
        case
            {%- for min_orders in f_bins | reverse %}
                when frequency >= {{ min_orders }} then {{ f_bins | length - loop.index0 }}
            {%- endfor %}
            else 1
        end as f_score,
        cast({{ int_div('5 * monetary_rank_k + buyers - 1', 'buyers') }} as integer) as m_score
    from cumulative_counts
)

select
    scope_id,
    as_of_date,
    customer_id,
    recency_days,
    frequency,
    monetary_usd,
    first_order_at,
    last_order_at,
    previous_order_at,
    days_since_first_order,
    gap_before_last_order_days,
    r_score,
    f_score,
    m_score,
    case
        when r_score <= 2 and f_score <= 2 then 'Hibernating'
        when r_score <= 2 and f_score <= 4 then 'At Risk'
        when r_score <= 2 then 'Cannot Lose Them'
        when r_score = 3 and f_score <= 2 then 'About to Sleep'
        when r_score = 3 and f_score = 3 then 'Need Attention'
        when r_score <= 4 and f_score >= 4 then 'Loyal Customers'
        when r_score = 4 and f_score = 1 then 'Promising'
        when f_score in (2, 3) then 'Potential Loyalists'
        when f_score = 1 then 'New Customers'
        else 'Champions'
    end as rfm_segment,
    case
        when days_since_first_order <= {{ new_days }} then 'new'
        when
            recency_days <= {{ active_days }}
            and gap_before_last_order_days > {{ reactivation_gap_days }} then 'reactivated'
        when recency_days <= {{ active_days }} then 'active'
        when recency_days <= {{ churn_days }} then 'at_risk'
        else 'churned'
    end as lifecycle_stage,
    -- cume_dist() over monetary_usd descending <= share, again in exact (decimal) arithmetic
    case
        when monetary_desc_rank_k <= cast({{ high_share }} as decimal(18, 6)) * buyers then 'high'
        when
            monetary_desc_rank_k
            <= (cast({{ high_share }} as decimal(18, 6)) + cast({{ mid_share }} as decimal(18, 6))) * buyers
            then 'mid'
        else 'low'
    end as value_tier
from scored
