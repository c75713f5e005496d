"""The mart suites' frames: each mart with derived columns for orphans and gaps, plus a one-row
reconciliation of revenue between the marts and the valid orders recomputed from raw."""

from __future__ import annotations

from collections.abc import Callable

from rapport.expectations.catalog import SuiteSpec
from rapport.expectations.frames import Frame

VALID_STATUSES = "('paid', 'fulfilled', 'partially_refunded')"

MART_QUERIES: dict[str, str | Callable[[], str]] = {
    "mart_customers": """
        with identity_counts as (
            select customer_id, count(*) as identity_count from marts.customer_identities group by customer_id
        ),
        segment_counts as (
            select customer_id, count(*) as segment_rows from marts.customer_segments group by customer_id
        )
        select customers.*,
            coalesce(identity_counts.identity_count, 0) as identity_count,
            coalesce(segment_counts.segment_rows, 0) as segment_rows,
            customers.avg_order_value_usd - customers.lifetime_revenue_usd / nullif(customers.order_count, 0)
                as avg_order_value_gap_usd
        from marts.customers as customers
        left join identity_counts on identity_counts.customer_id = customers.customer_id
        left join segment_counts on segment_counts.customer_id = customers.customer_id""",
    "mart_customer_identities": """
        select identities.*,
            case when customers.customer_id is null then identities.customer_id end as orphan_customer_id
        from marts.customer_identities as identities
        left join (select distinct customer_id from marts.customers) as customers
            on customers.customer_id = identities.customer_id""",
    "mart_identity_rejected_identifiers": "select * from marts.identity_rejected_identifiers",
    "mart_customer_segments": """
        select segments.*,
            case when customers.customer_id is null then segments.customer_id end as orphan_customer_id,
            case when (segments.rfm_segment = 'No Purchases') <> (coalesce(segments.frequency, 0) = 0)
                then segments.customer_id end as purchase_segment_mismatch
        from marts.customer_segments as segments
        left join (select distinct customer_id from marts.customers) as customers
            on customers.customer_id = segments.customer_id""",
    "mart_segment_summary": "select * from marts.segment_summary",
    "mart_value_concentration": "select * from marts.value_concentration",
    "mart_campaign_performance": """
        select performance.*,
            case when not exists (
                    select 1 from raw.esp_campaigns as campaigns
                    where campaigns.campaign_id = performance.campaign_id::varchar)
                then performance.campaign_id end as unknown_campaign_id
        from marts.campaign_performance as performance""",
    "mart_campaign_segment_performance": """
        with segment_sizes as (
            select campaign_id, sum(treatment_size) + sum(control_size) as segment_audience
            from marts.campaign_segment_performance group by campaign_id
        )
        select segments.*,
            case when campaigns.campaign_id is null then segments.campaign_id end as unknown_campaign_id,
            case when segment_sizes.segment_audience <> campaigns.treatment_size + campaigns.control_size
                then segments.campaign_id end as audience_size_gap
        from marts.campaign_segment_performance as segments
        left join marts.campaign_performance as campaigns on campaigns.campaign_id = segments.campaign_id
        left join segment_sizes on segment_sizes.campaign_id = segments.campaign_id""",
    # One row. Revenue of valid orders is recomputed from raw (latest version of each order, the rate of
    # the order's day or the latest earlier one), independently of the dbt models it reconciles with. Like
    # with like: marts.customers holds lifetime figures (every valid order landed), the segment marts only
    # the valid orders created on or before their as-of date (RAPPORT_AS_OF may lie before the last order).
    "mart_reconciliation": f"""
        with latest_orders as (
            select * from raw.shop_orders qualify row_number() over (partition by id order by updated_at desc) = 1
        ),
        valid_orders as (
            select currency, created_at::date as order_date, total - refunded_total as net
            from latest_orders where status in {VALID_STATUSES}
        ),
        rates as (
            select rate_date, currency, usd_per_unit from raw.shop_fx_rates
            qualify row_number() over (partition by rate_date, currency order by _extracted_at desc) = 1
        ),
        valid_orders_usd as (
            select valid_orders.order_date, valid_orders.net * coalesce(
                    rates.usd_per_unit, case when valid_orders.currency = 'USD' then 1 end) as net_usd
            from valid_orders asof left join rates
                on rates.currency = valid_orders.currency and valid_orders.order_date >= rates.rate_date
        ),
        segments_as_of as (
            select max(as_of_date) as as_of_date from marts.customer_segments
        ),
        orders_total as (
            select coalesce(sum(net_usd), 0)::double as revenue_usd,
                coalesce(sum(net_usd) filter (where order_date <= segments_as_of.as_of_date), 0)::double
                    as revenue_as_of_usd,
                count(*) filter (where net_usd is null) as without_rate
            from valid_orders_usd, segments_as_of
        ),
        customers_total as (
            select coalesce(sum(lifetime_revenue_usd), 0)::double as revenue_usd, count(*) as customers
            from marts.customers
        ),
        segments_total as (
            select coalesce(sum(revenue_usd), 0)::double as revenue_usd, sum(customers) as customers,
                sum(revenue_share) as revenue_share_total
            from marts.segment_summary
        ),
        tiers as (
            select coalesce(sum(monetary_usd) filter (where value_tier = 'high'), 0)::double as high_usd,
                coalesce(sum(monetary_usd), 0)::double as all_usd
            from marts.customer_segments
        )
        select
            orders_total.revenue_usd as valid_orders_revenue_usd,
            orders_total.revenue_as_of_usd as valid_orders_revenue_as_of_usd,
            customers_total.revenue_usd as customers_revenue_usd,
            segments_total.revenue_usd as segments_revenue_usd,
            greatest(0.01 * customers_total.customers, 0.01) as revenue_tolerance_usd,
            abs(customers_total.revenue_usd - orders_total.revenue_usd) as customers_vs_orders_gap_usd,
            abs(segments_total.revenue_usd - orders_total.revenue_as_of_usd) as segments_vs_orders_as_of_gap_usd,
            coalesce(segments_total.customers, 0) - customers_total.customers as segment_customers_gap,
            case when segments_total.revenue_usd > 0 then segments_total.revenue_share_total end
                as revenue_share_total,
            (select top_20pct_revenue_share from marts.value_concentration limit 1)
                - tiers.high_usd / nullif(tiers.all_usd, 0) as high_tier_share_gap,
            orders_total.without_rate as valid_orders_without_rate
        from orders_total, customers_total, segments_total, tiers""",
}


# A NaN score counts as missing: DuckDB orders NaN above every number, so range checks would not see it, and
# pandas would hand it to Great Expectations as a missing value, which a range check passes.
_SCORES = ("p_alive", "expected_orders_90d", "expected_revenue_90d_usd", "predicted_clv_365d_usd", "p_order_90d")


def _customer_predictions_query() -> str:
    """marts.customer_predictions with its checks: every buyer of customer_purchase_history has exactly one
    row (a full join, so a missing customer shows up), churn_risk follows p_alive and the dbt vars'
    thresholds, scored rows carry every value."""
    from rapport.predictions.config import INSUFFICIENT, NOT_CONVERGED, load_config

    cfg = load_config()
    return f"""
        with history as (select customer_id from marts.customer_purchase_history),
        segments_as_of as (select max(as_of_date) as as_of_date from marts.customer_segments)
        select predictions.* exclude (customer_id),
            coalesce(predictions.customer_id, history.customer_id) as customer_id,
            case when predictions.customer_id is null then history.customer_id end as buyer_without_prediction,
            case when history.customer_id is null then predictions.customer_id end as prediction_without_history,
            case when predictions.customer_id is not null and not exists (
                    select 1 from marts.customers where customers.customer_id = predictions.customer_id)
                then predictions.customer_id end as orphan_customer_id,
            case when predictions.as_of_date <> segments_as_of.as_of_date then predictions.customer_id end
                as as_of_mismatch,
            case when predictions.model not in ('{INSUFFICIENT}', '{NOT_CONVERGED}') and (
                    {" or ".join(f"predictions.{c} is null or isnan(predictions.{c})" for c in _SCORES)}
                    or predictions.churn_risk is null)
                then predictions.customer_id end as scored_without_values,
            case when predictions.churn_risk is distinct from (case
                    when predictions.p_alive is null then null
                    when predictions.p_alive > {cfg.churn_low_above} then 'low'
                    when predictions.p_alive < {cfg.churn_high_below} then 'high'
                    else 'medium' end)
                then predictions.customer_id end as churn_risk_mismatch,
            case when predictions.predicted_clv_365d_usd < predictions.expected_revenue_90d_usd - 1e-6
                then predictions.customer_id end as clv_below_90d_revenue
        from marts.customer_predictions as predictions
        full outer join history on history.customer_id = predictions.customer_id
        cross join segments_as_of"""


# built when the checks run: the churn thresholds are the dbt project's vars
MART_QUERIES["mart_customer_predictions"] = _customer_predictions_query


def mart_frame(spec: SuiteSpec, *, candidates: bool = True) -> Frame:
    """The suite's frame; `candidates=False`: every row, whatever the expectations."""
    query = MART_QUERIES[spec.name]
    sql = query() if callable(query) else query
    queries = [sql]
    if spec.relation.startswith("marts.") and "," not in spec.relation:
        queries.append(f"select * from {spec.relation}")
    # Each mart's frame carries only what its suite reads (the contract's columns, derived columns, key).
    # The one-row reconciliation keeps its revenue figures: they explain a gap to whoever opens the frame.
    columns = spec.columns_read if spec.name != "mart_reconciliation" else None
    # Of each mart, Great Expectations sees only the rows an expectation of its suite could object to, when
    # every expectation allows it (candidate_rows.py); the one-row frames are too small to matter.
    return Frame(
        suite=spec.name,
        relation=spec.relation,
        queries=tuple(queries),
        columns=columns,
        count_first=True,
        candidates_of=spec.expectations if candidates and spec.name != "mart_reconciliation" else (),
    )
