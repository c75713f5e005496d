"""The clusters by region (docs/identity-incremental.md "Clusters by region"): an incremental build
recomputes int_identity_clusters_propagated for the labels' region (`int_identity_labels__region`, handed
over in the labels' transaction and consumed in the clusters'), the touched records and the components of the
touched records; every other row stays. Two hand-made histories (max_identifier_fanout 2), each equal to a
`--full-refresh` rebuild after the last day (the days of test_identity_incremental.py check the rest: joins,
merges, splits, vanished records, a record left without an edge):
- an anchor that moves with no edge changing: the touched record's cluster mate must be recomputed;
- the labels built on a day without the clusters, then the retry: the region the clusters did not consume
  must survive, else a record that left a cluster keeps its old anchor.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_identity_incremental import DAY0_LOADED, _full_rebuild_differences, _incremental_build, day_zero_build

pytestmark = pytest.mark.slow

DAY1 = "2025-07-01 00:00:00"
DAY2 = "2025-07-02 00:00:00"
REGION = "intermediate.int_identity_labels__region"


def _anchors(wh: Any) -> dict[str, str]:
    return dict(wh.query("select record_id, anchor_record_id from intermediate.int_identity_clusters_propagated"))


def test_an_anchor_moving_without_an_edge_change_moves_for_the_whole_cluster(
    make_warehouse, rows, tmp_path_factory
) -> None:
    """Day 0: customer 2 (created 2024-06-01) and contact b1 (2024-03-01) share b@x: b1 is the anchor. Day 1:
    a new version of customer 2 says it was created 2024-01-01 (same email): no edge changes, the region is
    empty, and customer 2 becomes the anchor of b1's row too. Customer 1 is untouched."""
    wh = make_warehouse("anchor-moves")
    sc = rows.shop_customer
    wh.insert("shop_customers", [sc(1, email="a@x.com"), sc(2, email="b@x.com", created_at="2024-06-01 00:00:00")])
    wh.insert("esp_contacts", [rows.esp_contact("b1", email="b@x.com")])
    day_zero_build(wh)
    assert _anchors(wh) == {"orders.customer:1": "orders.customer:1", "orders.customer:2": "esp.contact:b1",
                            "esp.contact:b1": "esp.contact:b1"}  # fmt: skip

    wh.insert("shop_customers", [sc(2, email="b@x.com", created_at="2024-01-01 00:00:00",
                                    updated_at="2025-06-01 00:00:00")], run_id="d1", extracted_at=DAY1)  # fmt: skip
    _incremental_build(wh, "d1", DAY0_LOADED)
    assert _anchors(wh) == {"orders.customer:1": "orders.customer:1", "orders.customer:2": "orders.customer:2",
                            "esp.contact:b1": "orders.customer:2"}  # fmt: skip
    assert wh.query(f"select count(*) from {REGION}") == [(0,)]  # consumed
    assert _full_rebuild_differences(wh, "d1", tmp_path_factory.mktemp("anchor-moves-full"), data_tests=False) == {}


def test_a_region_the_clusters_did_not_consume_waits_for_them(make_warehouse, rows, tmp_path_factory) -> None:
    """Day 0: A = {customer 1, helpdesk user 10} (a@x), anchored on user 10 (created 2023); customer 2 alone
    (b@x). Day 1, built up to the labels only: user 10 moves to b@x, so customer 1 is left alone and user 10
    joins customer 2. Day 2, the retry of the whole build (from day 0's load), with contact e1 landing: the
    labels relabel nothing new, but customer 1, which no build since day 0 touched, must lose user 10 as its
    anchor: only day 1's region says so."""
    wh = make_warehouse("region-waits")
    sc, hu = rows.shop_customer, rows.helpdesk_user
    wh.insert("shop_customers", [sc(1, email="a@x.com"), sc(2, email="b@x.com")])
    wh.insert("helpdesk_users", [hu(10, email="a@x.com", created_at="2023-01-01 00:00:00")])
    day_zero_build(wh)
    assert _anchors(wh)["orders.customer:1"] == "helpdesk.user:10"

    wh.insert("helpdesk_users", [hu(10, email="b@x.com", created_at="2023-01-01 00:00:00",
                                    updated_at="2025-06-01 00:00:00")], run_id="d1", extracted_at=DAY1)  # fmt: skip
    _incremental_build(wh, "d1", DAY0_LOADED, select=["+int_identity_labels"])
    # the nodes of A and customer 2 (three records) wait for the clusters
    assert wh.query(f"select count(distinct node) from {REGION}") == [(3,)]

    wh.insert("esp_contacts", [rows.esp_contact("e1", email="e@x.com")], run_id="d2", extracted_at=DAY2)
    _incremental_build(wh, "d2", DAY0_LOADED)
    assert _anchors(wh) == {"orders.customer:1": "orders.customer:1", "orders.customer:2": "helpdesk.user:10",
                            "helpdesk.user:10": "helpdesk.user:10", "esp.contact:e1": "esp.contact:e1"}  # fmt: skip
    assert wh.query(f"select count(*) from {REGION}") == [(0,)]
    assert _full_rebuild_differences(wh, "d2", tmp_path_factory.mktemp("region-waits-full"), data_tests=False) == {}
