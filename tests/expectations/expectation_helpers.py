"""Small hand-made warehouses for the expectation tests: raw tables from `raw_ddl`, marts by hand."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb

from rapport.core.config import Settings, load_settings
from rapport.extractors.schemas import raw_ddl

LANDED_AT = datetime(2026, 3, 1, 12, 0)


def land(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict], run_id: str) -> None:
    """Insert rows into raw.<table> as a run of the extractor would, with the load metadata filled in."""
    for row in rows:
        row = {**row, "_run_id": run_id, "_extracted_at": row.get("_extracted_at", LANDED_AT)}
        cols = ", ".join(f'"{c}"' for c in row)
        values = [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()]
        con.execute(f"insert into raw.{table} ({cols}) values ({', '.join('?' * len(row))})", values)


def order(**kw) -> dict:
    base = {
        "id": 10,
        "customer_id": 1,
        "email": "ana@example.com",
        "phone": None,
        "status": "paid",
        "currency": "USD",
        "subtotal": 100,
        "discount_total": 0,
        "shipping_total": 0,
        "tax_total": 0,
        "total": 100,
        "refunded_total": 0,
        "created_at": "2026-01-05 10:00:00",
        "updated_at": "2026-01-05 10:00:00",
    }
    return {**base, **kw}


def event(**kw) -> dict:
    base = {
        "sg_event_id": "e1",
        "email": "ana@example.com",
        "timestamp": 1768039200,  # 2026-01-10 10:00 UTC
        "event": "delivered",
        "sg_message_id": "m1",
        "campaign_id": "k1",
    }
    return {**base, **kw}


def ticket(**kw) -> dict:
    base = {
        "id": 900,
        "requester_id": 500,
        "assignee_id": 501,
        "subject": "Where is my parcel",
        "status": "solved",
        "priority": "normal",
        "via": {"channel": "email"},
        "tags": ["shipping"],
        "satisfaction_rating": {"score": "good", "comment": None},
        "metric_set": {
            "reply_time_in_minutes": {"calendar": 30},
            "full_resolution_time_in_minutes": {"calendar": 300},
            "solved_at": None,
            "reopens": 0,
        },
        "created_at": "2026-01-07 09:00:00",
        "updated_at": "2026-01-07 15:00:00",
    }
    return {**base, **kw}


def land_clean_sources(con: duckdb.DuckDBPyConnection, run_id: str = "r0") -> None:
    """Every raw table with a few rows that satisfy every raw suite (values checked by hand)."""
    for stmt in raw_ddl():
        con.execute(stmt)
    land(
        con,
        "shop_customers",
        [
            {
                "id": 1,
                "email": "Ana@Example.com ",
                "first_name": "Ana",
                "last_name": "Lee",
                "phone": "010-1234-5678",
                "country": "KR",
                "accepts_marketing": True,
                "created_at": "2026-01-01 08:00:00",
                "updated_at": "2026-01-02 08:00:00",
            },
        ],
        run_id,
    )
    land(
        con,
        "shop_orders",
        [
            order(),
            # guest order in EUR: 50 - 5 + 5 + 0 = 50
            order(
                id=11,
                customer_id=None,
                email="guest@example.com",
                status="fulfilled",
                currency="EUR",
                subtotal=50,
                discount_total=5,
                shipping_total=5,
                tax_total=0,
                total=50,
                created_at="2026-01-06 10:00:00",
                updated_at="2026-01-06 11:00:00",
            ),
        ],
        run_id,
    )
    land(
        con,
        "shop_order_items",
        [
            {
                "id": 100,
                "order_id": 10,
                "sku": "S1",
                "product_name": "Mug",
                "category": "home",
                "quantity": 1,
                "unit_price": 100,
            },
        ],
        run_id,
    )
    land(
        con,
        "shop_fx_rates",
        [
            {"rate_date": "2026-01-01", "currency": "EUR", "usd_per_unit": 1.1},
            {"rate_date": "2026-01-01", "currency": "USD", "usd_per_unit": 1},
        ],
        run_id,
    )
    land(
        con,
        "helpdesk_users",
        [
            {
                "id": 500,
                "name": "Ana Lee",
                "email": "ana@example.com",
                "phone": None,
                "role": "end-user",
                "external_id": "1",
                "created_at": "2026-01-01 09:00:00",
                "updated_at": "2026-01-01 09:00:00",
            },
            {
                "id": 501,
                "name": "Agent",
                "email": "agent@shop.example",
                "phone": None,
                "role": "agent",
                "external_id": None,
                "created_at": "2025-01-01 09:00:00",
                "updated_at": "2025-01-01 09:00:00",
            },
        ],
        run_id,
    )
    land(con, "helpdesk_tickets", [ticket()], run_id)
    land(
        con,
        "esp_contacts",
        [
            {
                "contact_id": "c-1",
                "email": "ana@example.com",
                "first_name": "Ana",
                "last_name": "Lee",
                "status": "subscribed",
                "created_at": "2026-01-01 00:00:00",
                "updated_at": "2026-01-01 00:00:00",
                "snapshot_date": "2026-01-02",
            },
        ],
        run_id,
    )
    land(
        con,
        "esp_campaigns",
        [
            {
                "campaign_id": "k1",
                "name": "January sale",
                "subject": "Sale",
                "send_at": "2026-01-10 10:00:00",
                "target_segment": "all",
                "holdout_pct": 10,
                "cost": 100,
                "cost_currency": "USD",
                "snapshot_date": "2026-01-09",
            },
        ],
        run_id,
    )
    land(
        con,
        "esp_audiences",
        [
            {"campaign_id": "k1", "email": "ana@example.com", "group": "treatment"},
            {"campaign_id": "k1", "email": "guest@example.com", "group": "control"},
        ],
        run_id,
    )
    land(
        con,
        "esp_events",
        [event(), event(sg_event_id="e2", event="open", timestamp=1768042800, sg_machine_open=False)],
        run_id,
    )


def build_clean_marts(con: duckdb.DuckDBPyConnection) -> None:
    """Marts consistent with `land_clean_sources`: revenue 100 (order 10) + 50 EUR * 1.1 = 55 (order 11)."""
    con.execute("create schema if not exists marts")
    con.execute("""create or replace table marts.customers as select * from (values
        ('p1', 'ana@example.com', '+821012345678', 'Ana Lee', 'KR', timestamp '2026-01-01 08:00:00', 1,
         100.0, 100.0, timestamp '2026-01-05 10:00:00', timestamp '2026-01-05 10:00:00', 1, 0, 1, 0, 300.0,
         'subscribed', 1, 1, 0, timestamp '2026-01-10 11:00:00'),
        ('p2', 'guest@example.com', null, null, null, timestamp '2026-01-06 10:00:00', 1,
         55.0, 55.0, timestamp '2026-01-06 10:00:00', timestamp '2026-01-06 10:00:00', 0, 0, 0, 0, null,
         'none', 0, 0, 0, null)
        ) t(customer_id, primary_email, primary_phone, full_name, country, first_seen_at, order_count,
            lifetime_revenue_usd, avg_order_value_usd, first_order_at, last_order_at, ticket_count,
            open_ticket_count, csat_good, csat_bad, avg_resolution_minutes, email_status, emails_delivered,
            unique_human_opens, unique_clicks, last_engaged_at)""")
    con.execute("""create or replace table marts.customer_identities as select * from (values
        ('orders.customer', '1', 'p1'), ('helpdesk.user', '500', 'p1'), ('esp.contact', 'c-1', 'p1'),
        ('esp.audience_member', 'k1:ana@example.com', 'p1'), ('orders.guest_order', '11', 'p2'),
        ('esp.audience_member', 'k1:guest@example.com', 'p2')) t(source, source_id, customer_id)""")
    con.execute("""create or replace table marts.identity_rejected_identifiers as
        select 'email' as identifier_type, 'info@shop.example' as identifier, 7 as fanout where false""")
    con.execute("""create or replace table marts.customer_segments as select * from (values
        ('p1', date '2026-03-01', 55, 1, 100.0, 5, 1, 5, 'New Customers', 'active', 'high', 'opener', 'healthy'),
        ('p2', date '2026-03-01', 54, 1, 55.0, 3, 1, 3, 'About to Sleep', 'active', 'low', 'unreachable', 'none')
        ) t(customer_id, as_of_date, recency_days, frequency, monetary_usd, r_score, f_score, m_score,
            rfm_segment, lifecycle_stage, value_tier, engagement_tier, support_health)""")
    con.execute("""create or replace table marts.segment_summary as select * from (values
        ('New Customers', 1, 100.0, 100.0 / 155, 100.0), ('About to Sleep', 1, 55.0, 55.0 / 155, 55.0)
        ) t(rfm_segment, customers, revenue_usd, revenue_share, avg_order_value_usd)""")
    con.execute("create or replace table marts.value_concentration as select 100.0 / 155 as top_20pct_revenue_share")
    con.execute("""create or replace table marts.customer_purchase_history as select * from (values
        ('p1', date '2026-03-01', 1, 0, 0.0, 55.583, 100.0), ('p2', date '2026-03-01', 1, 0, 0.0, 54.583, 55.0)
        ) t(customer_id, as_of_date, valid_orders, repeat_orders, days_first_to_last_order,
            days_first_order_to_cutoff, revenue_usd)""")
    con.execute("""create or replace table marts.customer_predictions as select * from (values
        ('p1', date '2026-03-01', 0.8, 0.3, 12.0, 40.0, 'low', 'pareto_nbd+gamma_gamma fitted 2026-03-02', 0.25),
        ('p2', date '2026-03-01', 0.5, 0.2, 8.0, 25.0, 'medium', 'pareto_nbd+gamma_gamma fitted 2026-03-02', 0.15)
        ) t(customer_id, as_of_date, p_alive, expected_orders_90d, expected_revenue_90d_usd,
            predicted_clv_365d_usd, churn_risk, model, p_order_90d)""")
    con.execute("""create or replace table marts.campaign_performance as select * from (values
        ('k1', 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, null, -0.6, 0.6, 1.0, 0.0,
         0.0, 0.0, 0.0, 100.0, -1.0)
        ) t(campaign_id, treatment_size, control_size, processed, delivered, bounced, dropped, unique_opens,
            unique_human_opens, unique_clicks, unsubscribes, spam_reports, open_rate, click_rate,
            click_to_open_rate, attributed_orders, attributed_revenue_usd, treatment_conversion_rate,
            control_conversion_rate, lift_abs, lift_rel, lift_ci_low, lift_ci_high, p_value,
            incremental_conversions, revenue_per_recipient_treatment_usd, revenue_per_recipient_control_usd,
            incremental_revenue_usd, cost_usd, roi)""")
    con.execute("""create or replace table marts.campaign_segment_performance as select * from (values
        ('k1', 'New Customers', 1, 0, 0.0, null, null, null, null),
        ('k1', 'About to Sleep', 0, 1, null, 0.0, null, null, null)
        ) t(campaign_id, rfm_segment, treatment_size, control_size, treatment_conversion_rate,
            control_conversion_rate, lift_abs, lift_ci_low, lift_ci_high)""")


def settings_for(warehouse: Path) -> Settings:
    warehouse.mkdir(parents=True, exist_ok=True)
    return load_settings({"RAPPORT_WAREHOUSE_DIR": str(warehouse)})
