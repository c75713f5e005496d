"""Segment marts built by dbt from hand-made raw rows, through staging and identity stitching.

Four people, as of 2025-06-30:
- alice (shop customer 1): paid 100 on 06-20, a cancelled order on 06-25; her helpdesk user (external_id 1)
  has an open urgent ticket; her ESP contact (subscribed) clicked on 06-25.
- bob (shop customer 2): paid 10 on 2024-06-01 and 10 on 2025-06-01 (gap 365 days: reactivated).
- carol (shop customer 3): no orders.
- dave (guest orders, dave@x.com): paid 50 on 2025-03-01, and 30 on 2025-07-15 (after the first as-of date).
Buyers as of 06-30: recency alice 10, bob 29, dave 121 -> R (n = 3, ceil(5k/3)): dave 2, bob 4, alice 5;
F: alice 1, bob 2, dave 1 -> New Customers, Potential Loyalists, Hibernating; carol No Purchases.
As of 07-31: alice 41, bob 60, dave 16 (F 2) -> bob 2, alice 4, dave 5 -> Hibernating, Promising,
Potential Loyalists.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # three dbt builds (~15 s each)

SELECT = ["+path:models/marts/segments", "+path:models/marts/predictions"]
JUNE, JULY = date(2025, 6, 30), date(2025, 7, 31)


def _unix(ts: str) -> int:
    return int(datetime.fromisoformat(ts).replace(tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def wh(make_warehouse, rows) -> Any:
    wh = make_warehouse("segments")
    wh.insert(
        "shop_customers",
        [
            rows.shop_customer(1, email="alice@x.com", first_name="Alice", last_name="Smith"),
            rows.shop_customer(2, email="bob@x.com", first_name="Bob"),
            rows.shop_customer(3, email="carol@x.com", first_name="Carol"),
        ],
    )
    o = rows.shop_order
    wh.insert(
        "shop_orders",
        [
            o(10, customer_id=1, total=100, created_at="2025-06-20 12:00:00", updated_at="2025-06-20 12:00:00"),
            o(11, customer_id=1, total=70, status="cancelled", created_at="2025-06-25 12:00:00",
              updated_at="2025-06-25 12:00:00"),
            o(20, customer_id=2, total=10, created_at="2024-06-01 12:00:00", updated_at="2024-06-01 12:00:00"),
            o(21, customer_id=2, total=10, status="fulfilled", created_at="2025-06-01 12:00:00",
              updated_at="2025-06-01 12:00:00"),
            o(30, email="dave@x.com", total=50, created_at="2025-03-01 12:00:00", updated_at="2025-03-01 12:00:00"),
            o(31, email="Dave@X.com", total=30, created_at="2025-07-15 12:00:00", updated_at="2025-07-15 12:00:00"),
        ],
    )  # fmt: skip
    wh.insert("helpdesk_users", [rows.helpdesk_user(500, name="Alice Smith", email="alice@x.com", external_id="1")])
    wh.insert("helpdesk_tickets", [rows.helpdesk_ticket(900, 500, status="open", priority="urgent")])
    wh.insert("esp_contacts", [rows.esp_contact("k-alice", email="Alice@x.com")])
    wh.insert(
        "esp_events",
        [rows.esp_event("e1", "ALICE@x.com", "click", campaign_id="cmp", timestamp=_unix("2025-06-25 10:00:00"))],
    )
    wh.build(as_of=JUNE, run_id="june-1", select=SELECT)
    return wh


def _by_name(wh: Any, table: str = "marts.customer_segments") -> dict[str, dict[str, Any]]:
    rows = wh.query_dicts(
        f"select c.full_name, c.primary_email, s.* from {table} s join marts.customers c using (customer_id)"
    )
    return {(r["full_name"] or r["primary_email"]).split()[0].lower().split("@")[0]: r for r in rows}


def test_segments_as_of_june(wh):
    seg = _by_name(wh)
    assert set(seg) == {"alice", "bob", "carol", "dave"}
    assert {k: (v["r_score"], v["f_score"], v["rfm_segment"]) for k, v in seg.items()} == {
        "alice": (5, 1, "New Customers"),
        "bob": (4, 2, "Potential Loyalists"),
        "dave": (2, 1, "Hibernating"),
        "carol": (None, None, "No Purchases"),
    }
    assert {k: v["lifecycle_stage"] for k, v in seg.items()} == {
        "alice": "new",
        "bob": "reactivated",
        "dave": "at_risk",
        "carol": "prospect",
    }
    assert seg["alice"]["recency_days"] == 10 and seg["dave"]["recency_days"] == 121
    assert seg["alice"]["frequency"] == 1  # the cancelled order does not count
    assert seg["dave"]["frequency"] == 1  # the July order is after the as-of date
    assert seg["alice"]["engagement_tier"] == "engaged"  # click by ALICE@x.com, stitched
    assert seg["alice"]["marketing_email"] == "Alice@x.com"
    assert seg["bob"]["engagement_tier"] == "unreachable"  # no ESP contact
    assert seg["alice"]["support_health"] == "at_risk"  # open urgent ticket
    assert seg["bob"]["support_health"] == "none"
    # value tiers over 3 buyers, monetary 100, 50, 20 descending: cume_dist 1/3 > 0.2 (no high tier),
    # alice 1/3 <= 0.5 mid, dave 2/3 and bob 3/3 low
    assert {k: v["value_tier"] for k, v in seg.items()} == {
        "alice": "mid",
        "dave": "low",
        "bob": "low",
        "carol": "none",
    }


def test_an_order_after_the_as_of_date_counts_for_customers_not_segments(wh):
    # dave's 30 USD order of 07-15 is after the June as-of date: lifetime figures count it, segments and
    # the purchase history the predictions are fitted on do not (point in time)
    rows = wh.query(
        "select c.order_count, c.lifetime_revenue_usd, s.frequency, s.monetary_usd, h.valid_orders, "
        "h.repeat_orders, h.days_first_order_to_cutoff from marts.customers c "
        "join marts.customer_segments s using (customer_id) "
        "join marts.customer_purchase_history h using (customer_id) where lower(c.primary_email) = 'dave@x.com'"
    )
    assert [tuple(float(v) for v in r) for r in rows] == [(2, 80, 1, 50, 1, 0, 121.5)]  # 03-01 12:00 to 07-01
    assert wh.query("select count(*) from marts.customer_purchase_history") == [(3,)]  # carol never bought


def test_reconciliation_counts_and_revenue(wh):
    assert wh.query("select count(*) from marts.customer_segments") == wh.query("select count(*) from marts.customers")
    assert wh.query("select sum(customers) from marts.segment_summary") == [(4,)]
    assert float(wh.query("select sum(revenue_usd) from marts.segment_summary")[0][0]) == 170.0
    summary = {r["rfm_segment"]: r for r in wh.query_dicts("select * from marts.segment_summary")}
    assert len(summary) == 11
    assert float(summary["New Customers"]["revenue_share"]) == pytest.approx(100 / 170)
    assert float(summary["Potential Loyalists"]["avg_order_value_usd"]) == 10.0
    share = wh.query("select top_20pct_revenue_share from marts.value_concentration")[0][0]
    assert float(share) == 0.0  # three buyers: the top one is 33% of buyers, over the 20% cut


def test_history_is_idempotent_per_date_and_migrations_show_movement(wh):
    wh.build(as_of=JUNE, run_id="june-2", select=SELECT)  # same as-of date again: replaces, no duplicates
    assert wh.query("select as_of_date, change, count(*), min(run_id) from marts.segment_history group by all") == [
        (JUNE, "entered", 4, "june-2")
    ]
    wh.build(as_of=JULY, run_id="july-1", select=SELECT)
    # a change log: alice, bob and dave changed segment; carol (no orders, no contact) did not, so no row
    counts = wh.query("select as_of_date, change, count(*) from marts.segment_history group by all order by 1")
    assert counts == [(JUNE, "entered", 4), (JULY, "changed", 3)]
    assert wh.query("select as_of_date, run_id, customers from marts.segment_history_dates order by 1") == [
        (JUNE, "june-2", 4),
        (JULY, "july-1", 4),
    ]
    july = _by_name(wh)
    assert {k: v["rfm_segment"] for k, v in july.items()} == {
        "alice": "Promising",
        "bob": "Hibernating",
        "dave": "Potential Loyalists",
        "carol": "No Purchases",
    }
    moves = wh.query(
        "select from_date, to_date, from_segment, to_segment, customers from marts.segment_migrations "
        "order by from_segment, to_segment"
    )
    assert moves == [
        (JUNE, JULY, "Hibernating", "Potential Loyalists", 1),
        (JUNE, JULY, "New Customers", "Promising", 1),
        (JUNE, JULY, "No Purchases", "No Purchases", 1),
        (JUNE, JULY, "Potential Loyalists", "Hibernating", 1),
    ]
    assert float(wh.query("select sum(revenue_usd) from marts.segment_summary")[0][0]) == 200.0
    # as of July dave's second order counts: x 1, t_x 136 days (03-01 12:00 to 07-15 12:00)
    dave = wh.query_dicts(
        "select h.* from marts.customer_purchase_history h join marts.customers c "
        "using (customer_id) where lower(c.primary_email) = 'dave@x.com'"
    )[0]
    assert (dave["repeat_orders"], dave["days_first_to_last_order"], dave["avg_repeat_order_value_usd"]) == (
        1,
        136.0,
        30.0,
    )
