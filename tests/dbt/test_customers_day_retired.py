"""Incremental marts.customers: the rows of customer ids that are no longer current leave the table
(docs/marts-incremental.md, "Ids no longer current"). A day build finds them among the ids of retired pairs
(the ids never delete a pair), not by comparing every row with every current id; each way an id stops being
current is here, on customers of its own, and the table must equal a --full-refresh rebuild after the day.

- day 0: G = guest order 401 (g@x), alone; C = customer 41 (c41@x); R = customer 3 (r@x); U = helpdesk
  user 13 (u13@x); K = customer 5 (k@x, order 402); P = customer 1 and helpdesk user 11 (p@x). Six customers.
- day 1: order 401 lands naming customer 41: the guest record vanishes with its only pair (G's id has no
  current pair left, and no pair written this day) and the order becomes C's; customer 3 takes u13@x: R and
  U merge, one of their ids goes on (docs/identity.md) and the other is retired; helpdesk user 11 takes
  p11@x: P splits, customer 1 keeps P's id, user 11's pair with it is retired. Hand-counted: C, the merged
  customer and P's two parts are recomputed (4); G's and the merged-away id's rows go; K's row stays as it
  was; 5 rows.
- day 2: order 403 lands for K, nothing else: K is recomputed (1). P's id holds a retired pair (user 11's)
  and is current: its row, untouched today, must stay (a delete of every id with a retired pair fails here).

Three dbt builds of the models under customers and two full rebuilds, about 45 s on 2 shared cores.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from dbt_nodes import full_rebuild_differences, incremental_build

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
DAY0_LOADED = "2025-06-30 00:00:00"  # tests/dbt/conftest.py's default load time
DAY1_LOADED = "2025-07-01 00:00:00"
DAY2_LOADED = "2025-07-02 00:00:00"
SELECT = ["+customers"]
VARS: dict[str, Any] = {}


def _ids(wh: Any) -> dict[str, str]:
    """Each record's current customer id."""
    rows = wh.query("select record_id, customer_id from intermediate.int_customer_ids_assigned where is_current")
    return dict(rows)


def _customers(wh: Any) -> dict[str, tuple[Any, ...]]:
    rows = wh.query("select customer_id, order_count, identity_records, primary_email from marts.customers")
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture(scope="module")
def day(make_warehouse, rows, tmp_path_factory) -> dict[str, Any]:
    wh = make_warehouse("customers-day-retired")
    root = tmp_path_factory.mktemp("customers-day-retired-full")
    sc, hu = rows.shop_customer, rows.helpdesk_user
    wh.insert("shop_customers", [sc(41, email="c41@x.com"), sc(3, email="r@x.com"), sc(5, email="k@x.com"),
                                 sc(1, email="p@x.com")])  # fmt: skip
    wh.insert("helpdesk_users", [hu(13, email="u13@x.com"), hu(11, email="p@x.com")])
    wh.insert("shop_orders", [rows.shop_order(401, email="g@x.com"), rows.shop_order(402, customer_id=5)])
    wh.build(run_id="d0", select=SELECT, extra_args=["--indirect-selection", "cautious"])
    out: dict[str, Any] = {"ids0": _ids(wh), "customers0": _customers(wh)}

    later = {"updated_at": "2025-06-01 00:00:00"}
    day1 = {"run_id": "d1", "extracted_at": DAY1_LOADED}
    wh.insert("shop_orders", [rows.shop_order(401, email="g@x.com", customer_id=41, **later)], **day1)
    wh.insert("shop_customers", [sc(3, email="u13@x.com", **later)], **day1)
    wh.insert("helpdesk_users", [hu(11, email="p11@x.com", **later)], **day1)
    out["recomputed"] = incremental_build(
        wh, "d1", DAY0_LOADED, as_of=AS_OF, select=SELECT, dbt_vars=VARS,
        logged=r"\bcustomers: incremental, recomputing (\d+) customers",
    )  # fmt: skip
    out["ids1"] = _ids(wh)
    out["customers1"] = _customers(wh)
    out["retired"] = {
        c for (c,) in wh.query("select distinct customer_id from intermediate.int_customer_ids_assigned "
                               "where not is_current")
    }  # fmt: skip
    out["diff"] = full_rebuild_differences(
        wh, "d1", root, as_of=AS_OF, select=SELECT, dbt_vars=VARS, table="marts.customers"
    )

    day2 = {"run_id": "d2", "extracted_at": DAY2_LOADED}
    wh.insert("shop_orders", [rows.shop_order(403, customer_id=5)], **day2)
    out["recomputed2"] = incremental_build(
        wh, "d2", DAY1_LOADED, as_of=AS_OF, select=SELECT, dbt_vars=VARS,
        logged=r"\bcustomers: incremental, recomputing (\d+) customers",
    )  # fmt: skip
    out["ids2"] = _ids(wh)
    out["customers2"] = _customers(wh)
    out["diff2"] = full_rebuild_differences(
        wh, "d2", root, as_of=AS_OF, select=SELECT, dbt_vars=VARS, table="marts.customers"
    )
    return out


def test_day0_six_customers(day) -> None:
    ids = day["ids0"]
    assert len(day["customers0"]) == 6
    assert len({ids[r] for r in ("orders.guest_order:401", "orders.customer:41", "orders.customer:3",
                                 "helpdesk.user:13", "orders.customer:5", "orders.customer:1")}) == 6  # fmt: skip
    assert ids["helpdesk.user:11"] == ids["orders.customer:1"]


def test_ids_no_longer_current_leave_the_table(day) -> None:
    before, after, ids = day["ids0"], day["ids1"], day["ids1"]
    guest, merged_pair = before["orders.guest_order:401"], {before["orders.customer:3"], before["helpdesk.user:13"]}
    # the guest record vanished: its id has no current pair, only a retired one
    assert "orders.guest_order:401" not in after
    assert guest not in set(after.values()) and guest in day["retired"]
    # R and U merged: one of their ids goes on, the other is retired
    merged = ids["orders.customer:3"]
    assert ids["helpdesk.user:13"] == merged and merged in merged_pair
    (gone,) = merged_pair - {merged}
    assert gone in day["retired"] and gone not in set(after.values())
    # the rows: both retired ids gone, C with the guest's order, the merged customer with 2 records, K as it was
    # P split: customer 1 keeps P's id, which now also holds user 11's retired pair
    p = before["orders.customer:1"]
    assert ids["orders.customer:1"] == p and ids["helpdesk.user:11"] != p and p in day["retired"]
    customers = day["customers1"]
    assert set(customers) == {ids["orders.customer:41"], merged, ids["orders.customer:5"], p,
                              ids["helpdesk.user:11"]}  # fmt: skip
    assert customers[ids["orders.customer:41"]][:2] == (1, 1)
    assert customers[merged][1] == 2
    assert customers[ids["orders.customer:5"]] == day["customers0"][before["orders.customer:5"]]
    assert customers[p][1] == 1
    assert day["recomputed"] == 4
    assert day["diff"] == (0, 0)


def test_day2_a_current_id_with_a_retired_pair_keeps_its_row(day) -> None:
    p = day["ids0"]["orders.customer:1"]
    assert day["ids2"] == day["ids1"]
    assert day["customers2"][p] == day["customers1"][p]
    k = day["ids1"]["orders.customer:5"]
    assert (day["customers1"][k][0], day["customers2"][k][0]) == (1, 2)
    assert len(day["customers2"]) == 5
    assert day["recomputed2"] == 1
    assert day["diff2"] == (0, 0)
