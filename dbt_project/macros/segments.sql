{#-
    Customer scoring rules of marts.md ("marts.customer_segments"), one definition for every model that
    scores customers (int_segment_rfm today, per scope: the run's as-of date and each campaign send).
    Thresholds are the vars in dbt_project.yml. Portable SQL (DuckDB and Spark): integer comparisons, no
    engine-specific operators.
-#}

{#- The valid orders of stitched customers (marts.md "Valid order"), with net USD revenue (0 when the
    currency had no rate). Every model that counts orders, revenue or purchases per customer starts here. -#}
{% macro valid_customer_orders() -%}
    select
        order_id,
        customer_id,
        created_at,
        coalesce(net_revenue_usd, 0) as net_revenue_usd
    from {{ ref('int_orders_enriched') }}
    where is_valid and customer_id is not null and created_at is not null
{%- endmacro %}

{#- ceil(buckets * cume_dist()) with cume_dist() = rank_k / count_n (rank_k: rows ordered up to and
    including the row's peers). Compared in integers, smallest s with buckets * k <= s * n, so no
    floating-point rounding can move a customer across a score boundary; ties share k, hence the score. -#}
{% macro rank_score(rank_k, count_n, buckets=5) -%}
    case
    {%- for s in range(1, buckets) %}
        when {{ buckets }} * {{ rank_k }} <= {{ s }} * {{ count_n }} then {{ s }}
    {%- endfor %}
        else {{ buckets }}
    end
{%- endmacro %}

{#- f_score by fixed bins of valid-order count: var rfm_frequency_bins lists the minimum orders of
    scores 1..5 (default 1, 2, 3, 4-5, 6+). -#}
{% macro frequency_score(orders) -%}
    {%- set bins = var('rfm_frequency_bins', [1, 2, 3, 4, 6]) -%}
    case
    {%- for min_orders in bins | reverse %}
        when {{ orders }} >= {{ min_orders }} then {{ bins | length - loop.index0 }}
    {%- endfor %}
        else 1
    end
{%- endmacro %}

{#- rfm_segment from (R, F), marts.md's grid; the first matching branch wins. -#}
{% macro rfm_segment(r_score, f_score) -%}
    case
        when {{ r_score }} <= 2 and {{ f_score }} <= 2 then 'Hibernating'
        when {{ r_score }} <= 2 and {{ f_score }} <= 4 then 'At Risk'
        when {{ r_score }} <= 2 then 'Cannot Lose Them'
        when {{ r_score }} = 3 and {{ f_score }} <= 2 then 'About to Sleep'
        when {{ r_score }} = 3 and {{ f_score }} = 3 then 'Need Attention'
        when {{ r_score }} <= 4 and {{ f_score }} >= 4 then 'Loyal Customers'
        when {{ r_score }} = 4 and {{ f_score }} = 1 then 'Promising'
        when {{ f_score }} in (2, 3) then 'Potential Loyalists'
        when {{ f_score }} = 1 then 'New Customers'
        else 'Champions'
    end
{%- endmacro %}

{#- lifecycle_stage of a customer with at least one valid order (others are 'prospect'); the first stage
    that applies wins, in marts.md's order. -#}
{% macro lifecycle_stage(days_since_first_order, recency_days, gap_before_last_order_days) -%}
    case
        when {{ days_since_first_order }} <= {{ var('lifecycle_new_days', 30) }} then 'new'
        when
            {{ recency_days }} <= {{ var('lifecycle_active_days', 90) }}
            and {{ gap_before_last_order_days }} > {{ var('lifecycle_reactivation_gap_days', 180) }}
            then 'reactivated'
        when {{ recency_days }} <= {{ var('lifecycle_active_days', 90) }} then 'active'
        when {{ recency_days }} <= {{ var('lifecycle_churn_days', 180) }} then 'at_risk'
        else 'churned'
    end
{%- endmacro %}

{#- value_tier by revenue: cume_dist() over monetary descending (desc_rank_k / count_n) at most
    value_tier_high_share is 'high', up to high + mid share 'mid', else 'low'; exact decimal arithmetic. -#}
{% macro value_tier(desc_rank_k, count_n) -%}
    {%- set high_share = var('value_tier_high_share', 0.2) -%}
    {%- set mid_share = var('value_tier_mid_share', 0.3) -%}
    case
        when {{ desc_rank_k }} <= cast({{ high_share }} as decimal(18, 6)) * {{ count_n }} then 'high'
        when
            {{ desc_rank_k }}
            <= (cast({{ high_share }} as decimal(18, 6)) + cast({{ mid_share }} as decimal(18, 6))) * {{ count_n }}
            then 'mid'
        else 'low'
    end
{%- endmacro %}
