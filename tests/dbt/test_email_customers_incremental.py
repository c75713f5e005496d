"""Incremental int_email_customers (issue 16, docs/marts-incremental.md "int_email_customers"): a day build
recomputes only the emails whose row can differ from the last build's, and the table equals a --full-refresh
rebuild after every day.

Hand-made (max_identifier_fanout 2: a value on 3 accounts is rejected); each case needs one branch of the
rule, (a) the emails touched records carry now (touched records: landed ones, and records whose pair the ids
rewrote), (b) rejection flips, (c) the emails the table mapped to a customer a touched record holds or held
(its current pair, or a retired one):
- day 0: A = customer 1 (r@x); B = customer 2 (b@x, phone PB); C = helpdesk users 31 (h31@x, P1) and 33
  (h31@x), customer 31 (s@x, P1), customer 32 (s@x, P2), helpdesk user 32 (h32@x, P2): one customer X;
  D = customers 8 and 9 (e@x, P8); F = guest order 401 (g@x) and customer 41 (c41@x); customers 61 (q@x)
  and 62 (w@x), never touched. 11 emails.
- day 1: customer 1 takes u1@x (u1@x appears: (a) of a landed record only; r@x leaves: (c) by customer 1's
  current pair only); helpdesk users 21 (n@x, PB) and 22 (b@x) land: a new record with an existing email (n@x
  appears); customer 33 lands with s@x: s@x is rejected, C splits, and h32@x moves from X to a new id with
  customers 32 and helpdesk user 32, none of them landed (only the ids' rewritten pairs find it); customer 10
  lands with e@x: rejected; order 401 now names customer 41: the guest record vanishes and g@x with it (its
  id retired: only (c), by the guest record's retired pair, finds it). Recomputed, hand-counted: u1, n, b,
  s, e, c41, h31, h32 (a), r, g (c): 10 emails.
- day 2: customer 33 takes t33@x: s@x back under the limit, C merges again (h32@x back to X, the split's id
  retired); customer 10 takes o10@x: e@x back under the limit, customers 8 and 9 were one customer all along
  (phone P8), so no pair is rewritten and only (b) finds e@x. Recomputed: t33, o10, s, h31, h32, e: 6.

Five dbt builds of the models under int_email_customers, about 40 s on 2 shared cores.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from dbt_nodes import full_rebuild_differences, incremental_build

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
DAY0_LOADED = "2025-06-30 00:00:00"  # tests/dbt/conftest.py's default load time
DAY1_LOADED = "2025-07-01 00:00:00"
DAY2_LOADED = "2025-07-02 00:00:00"
SELECT = ["+int_email_customers"]
VARS = {"max_identifier_fanout": 2}
P1, P2, PB, P8 = (f"+44 7700 900{n}" for n in ("101", "102", "103", "108"))
TABLE = "intermediate.int_email_customers"


def _build(wh: Any, run_id: str, since: str) -> int:
    """Incremental dbt build reading what landed after `since`; returns how many emails it recomputed."""
    return incremental_build(
        wh,
        run_id,
        since,
        as_of=AS_OF,
        select=SELECT,
        dbt_vars=VARS,
        logged=r"int_email_customers: incremental by email, recomputing (\d+) emails",
    )


def _full_rebuild_differences(wh: Any, run_id: str, root: Any) -> tuple[int, int]:
    return full_rebuild_differences(wh, run_id, root, as_of=AS_OF, select=SELECT, dbt_vars=VARS, table=TABLE)


def _snapshot(wh: Any) -> dict[str, Any]:
    """email (local part) -> customer id, and record id -> current customer id."""
    emails = {e.split("@")[0]: c for e, c in wh.query(f"select email_normalized, customer_id from {TABLE}")}
    ids = dict(wh.query("select record_id, customer_id from intermediate.int_customer_ids_assigned where is_current"))
    counts = {c for (c,) in wh.query(f"select distinct customer_count from {TABLE}")}
    assert counts <= {1}
    return {"emails": emails, "ids": ids}


@pytest.fixture(scope="module")
def days(make_warehouse, rows, tmp_path_factory) -> dict[str, Any]:
    wh = make_warehouse("email-customers-incremental")
    root = tmp_path_factory.mktemp("email-customers-incremental-full")
    sc, hu = rows.shop_customer, rows.helpdesk_user
    wh.insert("shop_customers", [
        sc(1, email="r@x.com"), sc(2, email="b@x.com", phone=PB),
        sc(31, email="s@x.com", phone=P1), sc(32, email="s@x.com", phone=P2),
        sc(8, email="e@x.com", phone=P8), sc(9, email="e@x.com", phone=P8),
        sc(41, email="c41@x.com"), sc(61, email="q@x.com"), sc(62, email="w@x.com"),
    ])  # fmt: skip
    wh.insert("helpdesk_users", [hu(31, email="h31@x.com", phone=P1), hu(33, email="h31@x.com"),
                                 hu(32, email="h32@x.com", phone=P2)])  # fmt: skip
    wh.insert("shop_orders", [rows.shop_order(401, email="g@x.com")])
    wh.build(run_id="d0", select=SELECT, extra_args=["--vars", json.dumps(VARS), "--indirect-selection", "cautious"])
    out: dict[str, Any] = {"day0": _snapshot(wh)}

    later = {"updated_at": "2025-06-01 00:00:00"}
    day1 = {"run_id": "d1", "extracted_at": DAY1_LOADED}
    wh.insert("shop_customers", [sc(1, email="u1@x.com", **later), sc(33, email="s@x.com"),
                                 sc(10, email="e@x.com")], **day1)  # fmt: skip
    wh.insert("helpdesk_users", [hu(21, email="n@x.com", phone=PB), hu(22, email="b@x.com")], **day1)
    wh.insert("shop_orders", [rows.shop_order(401, email="g@x.com", customer_id=41, **later)], **day1)
    out["recomputed1"] = _build(wh, "d1", DAY0_LOADED)
    out["day1"] = _snapshot(wh)
    out["diff1"] = _full_rebuild_differences(wh, "d1", root)

    day2 = {"run_id": "d2", "extracted_at": DAY2_LOADED}
    wh.insert("shop_customers", [sc(33, email="t33@x.com", **later), sc(10, email="o10@x.com", **later)], **day2)
    out["recomputed2"] = _build(wh, "d2", DAY1_LOADED)
    out["day2"] = _snapshot(wh)
    out["diff2"] = _full_rebuild_differences(wh, "d2", root)
    return out


def test_day0_maps_each_linking_email_to_its_carriers_customer(days) -> None:
    emails, ids = days["day0"]["emails"], days["day0"]["ids"]
    x = ids["helpdesk.user:31"]
    assert {ids[f"orders.customer:{n}"] for n in (31, 32)} | {ids["helpdesk.user:32"]} == {x}
    assert emails == {
        "r": ids["orders.customer:1"], "b": ids["orders.customer:2"], "h31": x, "s": x, "h32": x,
        "e": ids["orders.customer:8"], "c41": ids["orders.customer:41"], "g": ids["orders.guest_order:401"],
        "q": ids["orders.customer:61"], "w": ids["orders.customer:62"],
    }  # fmt: skip


def test_day1_new_emails_a_fanout_split_and_a_vanished_record(days) -> None:
    before, emails, ids = days["day0"]["emails"], days["day1"]["emails"], days["day1"]["ids"]
    x = before["h31"]
    assert ids["helpdesk.user:31"] == x  # the larger part of C keeps its id
    moved = ids["helpdesk.user:32"]
    assert moved != x and ids["orders.customer:32"] == moved
    assert "orders.guest_order:401" not in ids
    assert emails == {
        "u1": before["r"], "b": before["b"], "n": before["b"], "h31": x, "h32": moved,
        "c41": before["c41"], "q": before["q"], "w": before["w"],
    }  # fmt: skip
    assert days["recomputed1"] == 10
    assert days["diff1"] == (0, 0)


def test_day2_emails_back_under_the_limit(days) -> None:
    before, emails, ids = days["day1"]["emails"], days["day2"]["emails"], days["day2"]["ids"]
    x = before["h31"]
    assert {ids[f"orders.customer:{n}"] for n in (31, 32)} | {ids["helpdesk.user:32"]} == {x}
    assert ids["orders.customer:8"] == ids["orders.customer:9"] == days["day0"]["emails"]["e"]
    assert emails == {
        **before, "s": x, "h32": x, "e": days["day0"]["emails"]["e"],
        "t33": ids["orders.customer:33"], "o10": ids["orders.customer:10"],
    }  # fmt: skip
    assert days["recomputed2"] == 6
    assert days["diff2"] == (0, 0)
