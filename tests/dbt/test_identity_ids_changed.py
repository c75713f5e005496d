"""The ids read the clusters' change list (docs/identity-incremental.md "Stable ids"): an incremental clusters
build lists, in its transaction, the touched records it deletes and the recomputed records whose anchor
changed (`int_identity_clusters_propagated__changed`); int_customer_ids_assigned finds the records whose
anchor differs from their current pair's among the listed ones only, and empties the list in its own
transaction. A hand-made history (max_identifier_fanout 2), equal to a `--full-refresh` rebuild after the
last day: the clusters built on a day without the ids, then a day that does not touch those records again;
the list must wait for the ids (a list written over by the second clusters build would miss customer 1, whose
anchor changed on the first day, and its stale id would fail assert_customer_ids_follow_clusters).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from test_identity_incremental import DAY0_LOADED, VARS, _full_rebuild_differences, _incremental_build

pytestmark = pytest.mark.slow

DAY1 = "2025-07-01 00:00:00"
DAY2 = "2025-07-02 00:00:00"
CHANGED = "intermediate.int_identity_clusters_propagated__changed"


def _md5_id(text: str) -> str:
    """docs/identity.md: a new cluster's id is 'c' + 16 hex digits of md5 of its anchor record id."""
    return "c" + hashlib.md5(text.encode()).hexdigest()[:16]


def test_a_change_list_the_ids_did_not_consume_waits_for_them(make_warehouse, rows, tmp_path_factory) -> None:
    """Day 0: A = {customer 1, helpdesk user 10} (a@x), anchored on user 10 (created 2023); customer 2 alone
    (b@x). Day 1, built up to the clusters only: user 10 moves to b@x, so customer 1 is left alone (anchor:
    itself) and user 10 becomes the anchor of customer 2. Day 2, a normal day: contact e1 lands alone; nothing
    recomputes customers 1 and 2 again, so only day 1's list says their anchors moved. The ids: user 10's id
    (claimed by one record of each part) goes to the older anchor, user 10, which also wins customer 2's id
    and keeps the older customer's (user 10's): customer 2's is retired; customer 1 gets the md5 of itself
    (never issued), its pair with user 10's id retired."""
    wh = make_warehouse("ids-changed-waits")
    sc, hu = rows.shop_customer, rows.helpdesk_user
    wh.insert("shop_customers", [sc(1, email="a@x.com"), sc(2, email="b@x.com")])
    wh.insert("helpdesk_users", [hu(10, email="a@x.com", created_at="2023-01-01 00:00:00")])
    wh.build(run_id="d0", extra_args=["--vars", json.dumps(VARS), "--indirect-selection", "cautious"])
    assert wh.query(f"select count(*) from {CHANGED}") == [(0,)]  # the first ids build consumed the marker
    u10, c1, c2 = "helpdesk.user:10", "orders.customer:1", "orders.customer:2"

    wh.insert("helpdesk_users", [hu(10, email="b@x.com", created_at="2023-01-01 00:00:00",
                                    updated_at="2025-06-01 00:00:00")], run_id="d1", extracted_at=DAY1)  # fmt: skip
    _incremental_build(wh, "d1", DAY0_LOADED, select=["+int_identity_clusters_propagated"])
    # user 10 (touched: deleted and rewritten), customers 1 and 2 (anchor moved); the ids still hold day 0's
    assert wh.query(f"select distinct record_id from {CHANGED} order by 1") == [(u10,), (c1,), (c2,)]

    wh.insert("esp_contacts", [rows.esp_contact("e1", email="e@x.com")], run_id="d2", extracted_at=DAY2)
    _incremental_build(wh, "d2", DAY1)
    ids = dict(wh.query("select record_id, customer_id from intermediate.int_customer_ids_assigned where is_current"))
    assert ids == {u10: _md5_id(u10), c2: _md5_id(u10), c1: _md5_id(c1), "esp.contact:e1": _md5_id("esp.contact:e1")}
    retired = wh.query("select record_id, customer_id from intermediate.int_customer_ids_assigned where not is_current")
    # the pairs that stopped holding: customer 1's (user 10's id) and customer 2's own
    assert sorted(retired) == [(c1, _md5_id(u10)), (c2, _md5_id(c2))]
    assert wh.query(f"select count(*) from {CHANGED}") == [(0,)]  # consumed
    assert _full_rebuild_differences(wh, "d2", tmp_path_factory.mktemp("ids-changed-waits-full")) == {}
