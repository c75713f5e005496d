"""The mart reconciliation compares like with like when RAPPORT_AS_OF lies before the last order.

The hand-made marts of `build_clean_marts` are as of 2026-03-01 with revenue 100 (order 10, Ana) + 55
(order 11, 50 EUR at 1.1). Ana then orders 40 USD on 2026-03-10: `marts.customers` counts it (lifetime
140), the segments don't (their as-of date is earlier). The frame query runs on DuckDB alone (no GX), so
this is fast.
"""

from __future__ import annotations

import duckdb
import pytest
from expectation_helpers import build_clean_marts, land, land_clean_sources, order

from rapport.expectations.mart_frames import MART_QUERIES


@pytest.fixture
def later_order() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    land_clean_sources(con, "r0")
    build_clean_marts(con)
    land(
        con,
        "shop_orders",
        [order(id=12, total=40, subtotal=40, created_at="2026-03-10 09:00:00", updated_at="2026-03-10 09:00:00")],
        "r1",
    )
    con.execute(
        "update marts.customers set order_count = 2, lifetime_revenue_usd = 140.0, "
        "avg_order_value_usd = 70.0 where customer_id = 'p1'"
    )
    yield con
    con.close()


def _reconciliation(con: duckdb.DuckDBPyConnection) -> dict:
    cur = con.execute(MART_QUERIES["mart_reconciliation"])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1
    return dict(zip(names, rows[0], strict=True))


def test_segments_as_of_an_earlier_day_reconcile_with_the_orders_up_to_that_day(later_order):
    r = _reconciliation(later_order)
    assert r["valid_orders_revenue_usd"] == pytest.approx(195.0)
    assert r["valid_orders_revenue_as_of_usd"] == pytest.approx(155.0)
    assert r["customers_vs_orders_gap_usd"] == pytest.approx(0.0)
    assert r["segments_vs_orders_as_of_gap_usd"] == pytest.approx(0.0)
    assert r["high_tier_share_gap"] == pytest.approx(0.0)  # high tier: Ana's 100 of the segments' 155
    assert r["segment_customers_gap"] == 0


def test_segments_that_miss_an_order_up_to_their_as_of_date_do_not_reconcile(later_order):
    # the same marts claimed as of 2026-03-10: the 40 USD order should then be in the segments
    later_order.execute("update marts.customer_segments set as_of_date = date '2026-03-10'")
    r = _reconciliation(later_order)
    assert r["valid_orders_revenue_as_of_usd"] == pytest.approx(195.0)
    assert r["segments_vs_orders_as_of_gap_usd"] == pytest.approx(40.0)
    assert r["segments_vs_orders_as_of_gap_usd"] > r["revenue_tolerance_usd"]
