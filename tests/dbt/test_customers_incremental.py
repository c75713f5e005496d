"""Incremental marts.customers (issue 16, docs/marts-incremental.md): a build recomputes only the customers
whose row can differ from the last build's, and the table equals a --full-refresh rebuild after every day.

Hand-made (max_identifier_fanout 2: a value on 3 accounts is rejected), each case on its own customer so
that each mechanism of the touched set is the only one that sees it:
- day 0: P = {customer 1, helpdesk user 11} (p@x, order 201, ticket 301); Q = {customer 2, contact q1}
  (q@x, a delivered event); R = {customer 3} (r@x, order 202 in EUR on 2025-01-10, rate 1.1 from
  2025-01-01); S = {customer 4 (m@x, phone PS), helpdesk user 14 (h14@x, phone PS)}, primary email m@x;
  customers 8, 9, 10 share e@x (3 accounts: rejected, three customers; a delivered event on e@x maps to no
  one); helpdesk users 12 (ticket 303), 13 (ticket 304) and 15, alone.
- day 1, nothing of these customers' records changes: order 205 lands for customer 1 (P); a late EUR rate
  for 2025-01-05 (1.2) reprices R's order; ticket 303 is solved (user 12) and ticket 304 moves from user 13
  to user 15; a click on q@x (Q); customers 6 and 7 land with m@x: m@x is rejected, S's clusters and ids
  do not change but its primary email becomes h14@x. Recomputed, hand-counted: P, R, S, 12, 13, 15 and
  the new customers 6 and 7 whole (8), Q's engagement only (its records did not change): 9 of 12.
- day 2: customer 3 takes u13@x (R and helpdesk user 13 merge, one id leaves); helpdesk user 11 takes
  p11@x (P splits, ticket 301 follows user 11); customer 10 leaves e@x (back to 2 accounts: customers 8 and
  9 merge and the e@x event becomes theirs). Recomputed: R+13, the two parts of P, 8+9 and customer 10: 5
  of 11, all whole (no event landed).

Five dbt builds of the models under customers, about 45 s on 2 shared cores.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from dbt_nodes import full_rebuild_differences, incremental_build

from rapport.transform.runner import dbt_dirs

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
DAY0_LOADED = "2025-06-30 00:00:00"  # tests/dbt/conftest.py's default load time
DAY1_LOADED = "2025-07-01 00:00:00"
DAY2_LOADED = "2025-07-02 00:00:00"
SELECT = ["+customers", "customer_id_history"]
VARS = {"max_identifier_fanout": 2}
PHONE_S = "+44 7700 900777"
# the columns of customers, hand-checked below
SHOWN = ("primary_email", "order_count", "lifetime_revenue_usd", "ticket_count", "open_ticket_count",
         "emails_delivered", "unique_clicks", "identity_records")  # fmt: skip


LOGGED = r"\bcustomers: incremental, recomputing (\d+) customers and the engagement of (\d+) more"


def _build(wh: Any, run_id: str, since: str) -> tuple[int, int]:
    """Incremental dbt build reading what landed after `since`; returns how many customers it recomputed
    whole, and of how many more only the engagement columns."""
    whole = incremental_build(
        wh,
        run_id,
        since,
        as_of=AS_OF,
        select=SELECT,
        dbt_vars=VARS,
        logged=r"\bcustomers: incremental, recomputing (\d+) customers",
    )
    found = re.findall(LOGGED, (dbt_dirs(wh.settings)[1] / "dbt.log").read_text())
    assert int(found[-1][0]) == whole
    return whole, int(found[-1][1])


def _full_rebuild_differences(wh: Any, run_id: str, root: Any) -> tuple[int, int]:
    return full_rebuild_differences(
        wh, run_id, root, as_of=AS_OF, select=SELECT, dbt_vars=VARS, table="marts.customers"
    )


def _rows(wh: Any) -> dict[str, dict[str, Any]]:
    """Each record's customer's row (the columns SHOWN), by record id."""
    cols = ", ".join(f"c.{c}" for c in SHOWN)
    sql = (f"select a.record_id, a.customer_id, {cols} from intermediate.int_customer_ids_assigned as a "
           "inner join marts.customers as c using (customer_id) where a.is_current")  # fmt: skip
    return {r["record_id"]: r for r in wh.query_dicts(sql)}


@pytest.fixture(scope="module")
def days(make_warehouse, rows, tmp_path_factory) -> dict[str, Any]:
    wh = make_warehouse("customers-incremental")
    root = tmp_path_factory.mktemp("customers-incremental-full")
    sc, hu, ticket, event = rows.shop_customer, rows.helpdesk_user, rows.helpdesk_ticket, rows.esp_event
    wh.insert("shop_customers", [
        sc(1, email="p@x.com"), sc(2, email="q@x.com"), sc(3, email="r@x.com"),
        sc(4, email="m@x.com", phone="07700 900777", country="GB"),
        sc(8, email="e@x.com"), sc(9, email="e@x.com"), sc(10, email="e@x.com"),
    ])  # fmt: skip
    wh.insert("helpdesk_users", [hu(11, email="p@x.com"), hu(12, email="u12@x.com"), hu(13, email="u13@x.com"),
                                 hu(14, email="h14@x.com", phone=PHONE_S), hu(15, email="u15@x.com")])  # fmt: skip
    wh.insert("esp_contacts", [rows.esp_contact("q1", email="q@x.com")])
    wh.insert("esp_campaigns", [rows.esp_campaign("k1")])
    wh.insert("shop_orders", [rows.shop_order(201, customer_id=1),
                              rows.shop_order(202, customer_id=3, currency="EUR", total=20)])  # fmt: skip
    wh.insert("shop_fx_rates", [{"rate_date": "2025-01-01", "currency": "EUR", "usd_per_unit": 1.1}])
    wh.insert("helpdesk_tickets", [ticket(301, 11), ticket(303, 12), ticket(304, 13)])
    wh.insert("esp_events", [event("ev1", "q@x.com", "delivered", campaign_id="k1"),
                             event("ev2", "e@x.com", "delivered", campaign_id="k1")])  # fmt: skip
    wh.build(run_id="d0", select=SELECT, extra_args=["--vars", json.dumps(VARS), "--indirect-selection", "cautious"])
    out: dict[str, Any] = {"rows0": _rows(wh)}

    later = {"updated_at": "2025-06-01 00:00:00"}
    day1 = {"run_id": "d1", "extracted_at": DAY1_LOADED}
    wh.insert("shop_orders", [rows.shop_order(205, customer_id=1, total=5)], **day1)
    wh.insert("shop_fx_rates", [{"rate_date": "2025-01-05", "currency": "EUR", "usd_per_unit": 1.2}], **day1)
    wh.insert("helpdesk_tickets", [ticket(303, 12, status="solved", **later), ticket(304, 15, **later)], **day1)
    wh.insert("esp_events", [event("ev3", "q@x.com", "click", campaign_id="k1")], **day1)
    wh.insert("shop_customers", [sc(6, email="m@x.com"), sc(7, email="m@x.com")], **day1)
    out["recomputed1"] = _build(wh, "d1", DAY0_LOADED)
    out["rows1"] = _rows(wh)
    out["diff1"] = _full_rebuild_differences(wh, "d1", root)

    day2 = {"run_id": "d2", "extracted_at": DAY2_LOADED}
    wh.insert("shop_customers", [sc(3, email="u13@x.com", **later), sc(10, email="o10@x.com", **later)], **day2)
    wh.insert("helpdesk_users", [hu(11, email="p11@x.com", **later)], **day2)
    out["recomputed2"] = _build(wh, "d2", DAY1_LOADED)
    out["rows2"] = _rows(wh)
    out["customers2"] = wh.query("select count(*) from marts.customers")[0][0]
    out["ids2"] = {c for (c,) in wh.query("select customer_id from marts.customers")}
    out["diff2"] = _full_rebuild_differences(wh, "d2", root)
    return out


def _shown(row: dict[str, Any], **changed: Any) -> dict[str, Any]:
    return {c: changed.get(c, row[c]) for c in SHOWN}


def test_day1_untouched_customers_whose_rows_change(days) -> None:
    before, after = days["rows0"], days["rows1"]
    # an order landed for P (its records did not change)
    p = before["orders.customer:1"]
    assert _shown(after["orders.customer:1"]) == _shown(p, order_count=2, lifetime_revenue_usd=15)
    # a late EUR rate reprices R's order: 20 * 1.2
    assert after["orders.customer:3"]["lifetime_revenue_usd"] == 24
    assert before["orders.customer:3"]["lifetime_revenue_usd"] == 22
    # ticket 303 solved; ticket 304 moved from user 13 to user 15
    assert (after["helpdesk.user:12"]["ticket_count"], after["helpdesk.user:12"]["open_ticket_count"]) == (1, 0)
    assert [after[f"helpdesk.user:{u}"]["ticket_count"] for u in (13, 15)] == [0, 1]
    # a click on q@x
    assert (before["esp.contact:q1"]["unique_clicks"], after["esp.contact:q1"]["unique_clicks"]) == (0, 1)
    # m@x now on 3 accounts: rejected, so S shows its helpdesk user's email; S's id was not recomputed
    assert before["orders.customer:4"]["primary_email"] == "m@x.com"
    assert after["orders.customer:4"]["primary_email"] == "h14@x.com"
    assert after["orders.customer:4"]["customer_id"] == before["orders.customer:4"]["customer_id"]
    # untouched customers keep their rows
    for record in ("orders.customer:8", "orders.customer:9", "orders.customer:10"):
        assert after[record] == before[record]
    assert days["recomputed1"] == (8, 1)  # Q's engagement only
    assert days["diff1"] == (0, 0)


def test_day2_merge_split_and_an_email_back_under_the_limit(days) -> None:
    before, after = days["rows1"], days["rows2"]
    # R and user 13 merged: one of their ids goes on (docs/identity.md's rule), the other has no row any more
    merged = after["orders.customer:3"]["customer_id"]
    assert after["helpdesk.user:13"]["customer_id"] == merged
    assert after["orders.customer:3"]["identity_records"] == 2
    ids_before = {before[r]["customer_id"] for r in ("orders.customer:3", "helpdesk.user:13")}
    assert merged in ids_before
    assert ids_before & days["ids2"] == {merged}  # the retired id's row left marts.customers
    # P split: the ticket follows helpdesk user 11, the orders customer 1
    assert after["orders.customer:1"]["customer_id"] != after["helpdesk.user:11"]["customer_id"]
    assert (after["orders.customer:1"]["ticket_count"], after["helpdesk.user:11"]["ticket_count"]) == (0, 1)
    # e@x back to 2 accounts: customers 8 and 9 merge and the e@x event becomes theirs
    assert after["orders.customer:8"]["customer_id"] == after["orders.customer:9"]["customer_id"]
    assert (before["orders.customer:8"]["emails_delivered"], after["orders.customer:8"]["emails_delivered"]) == (0, 1)
    assert after["orders.customer:10"]["emails_delivered"] == 0
    assert days["customers2"] == 11
    assert days["recomputed2"] == (5, 0)
    assert days["diff2"] == (0, 0)
