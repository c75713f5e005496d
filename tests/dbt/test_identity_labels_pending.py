"""The labels' state (docs/identity-incremental.md "What the labelling recomputes"): the edges keep the
before-images of the values they change (`int_identity_edges_filtered__before`) until the labels consume
them, and the labels write their rows and empty that list in one transaction.

Three hand-made histories (max_identifier_fanout 2), each equal to a `--full-refresh` rebuild at the end:
- the edges built on a day without the labels, then a normal day that touches the same value again: the
  labels must diff against the image they saw (the first), not the one before the second edges build;
- a build that dies between writing the labels and emptying the list (a view in place of the region list
  makes the append between the two fail, a real DuckDB error), then the retry: the shared@x value
  goes over the fan-out limit on the crashed day and back under it on the next, so only labels and list
  changing together give the right region;
- an erasure (`rapport forget`) between two days: the labels and their pending images are dropped, the next
  build labels in full.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pytest
from test_identity_incremental import (
    DAY0_LOADED,
    _clusters,
    _full_rebuild_differences,
    _incremental_build,
    day_zero_build,
)

from rapport.orchestration.forget import forget
from rapport.privacy.store import KEY_ENV
from rapport.transform.runner import TransformError, dbt_dirs

pytestmark = pytest.mark.slow

DAY1 = "2025-07-01 00:00:00"
DAY2 = "2025-07-02 00:00:00"
BEFORE = "intermediate.int_identity_edges_filtered__before"
LABELS = "select node, label from intermediate.int_identity_labels order by node"
REGION = "intermediate.int_identity_labels__region"


@contextmanager
def _region_list_blocked(wh: Any) -> Iterator[None]:
    """A view in place of the labels' region list: the materialization appends the region to it after writing
    the labels and before emptying the before-images, and DuckDB refuses to insert into a view, so a build
    fails exactly there. The list (emptied by day 0's clusters) is kept aside and put back afterwards."""
    with duckdb.connect(str(wh.path)) as con:
        con.execute(f"alter table {REGION} rename to {REGION.split('.')[1]}_aside")
        con.execute(f"create view {REGION} as select cast(null as bigint) as node")
    try:
        yield
    finally:
        with duckdb.connect(str(wh.path)) as con:
            con.execute(f"drop view {REGION}")
            con.execute(f"alter table {REGION}_aside rename to {REGION.split('.')[1]}")


def _last_labelling(wh: Any) -> str:
    """What the last labels build logged: 'incremental N M' (N nodes relabelled, M changed edges) or 'full'."""
    log = (dbt_dirs(wh.settings)[1] / "dbt.log").read_text()
    runs = log.split("START sql label_propagation model intermediate.int_identity_labels")
    assert len(runs) > 1, "the labels were not built"
    found = re.search(r"int_identity_labels: incremental, relabelled (\d+) nodes of the components touched by "
                      r"(\d+) changed edges", runs[-1])  # fmt: skip
    return f"incremental {found[1]} {found[2]}" if found else "full"


def test_edges_built_without_the_labels_keep_the_image_the_labels_saw(make_warehouse, rows, tmp_path_factory) -> None:
    """Day 0: customer 1 and helpdesk user 10 share a@x. Day 1, the edges only: user 10 moves to q@x (a@x
    now has one carrier: no edge). Day 2, everything: customer 1 moves to r@x, which touches a@x again. Its
    image must stay day 0's (two edges), else the labels see no change and keep 1 and 10 together."""
    wh = make_warehouse("edges-without-labels")
    sc, hu = rows.shop_customer, rows.helpdesk_user
    wh.insert("shop_customers", [sc(1, email="a@x.com"), sc(2, email="b@x.com")])
    wh.insert("helpdesk_users", [hu(10, email="a@x.com")])
    day_zero_build(wh)
    keys = dict(wh.query("select record_id, record_key from intermediate.int_identity_records_unioned"))
    c1, h10 = keys["orders.customer:1"], keys["helpdesk.user:10"]

    wh.insert("helpdesk_users", [hu(10, email="q@x.com", updated_at="2025-06-01 00:00:00")],
              run_id="d1", extracted_at=DAY1)  # fmt: skip
    _incremental_build(wh, "d1", DAY0_LOADED, select=["+int_identity_edges_filtered"])
    # user 10's values before (a@x, with its two edges) and after (q@x, none yet)
    pending = wh.query(f"select identifier_type, identifier_value, node from {BEFORE} order by all")
    assert pending == sorted([("email", "a@x.com", c1), ("email", "a@x.com", h10), ("email", "q@x.com", None)])

    wh.insert("shop_customers", [sc(1, email="r@x.com", updated_at="2025-06-02 00:00:00")],
              run_id="d2", extracted_at=DAY2)  # fmt: skip
    _incremental_build(wh, "d2", DAY1)
    # a@x lost both edges since the labels last ran: 1 and 10 are relabelled, as singletons (no row)
    assert _last_labelling(wh) == "incremental 0 2"
    assert _clusters(wh) == {frozenset({r}) for r in ("orders.customer:1", "orders.customer:2", "helpdesk.user:10")}
    assert wh.query(f"select count(*) from {BEFORE}") == [(0,)]
    assert (
        _full_rebuild_differences(wh, "d2", tmp_path_factory.mktemp("edges-without-labels-full"), data_tests=False)
        == {}
    )


def test_a_build_dying_between_the_labels_and_the_clear_leaves_both_as_they_were(
    make_warehouse, rows, tmp_path_factory
) -> None:
    """Day 0: customers 3 and 4 share shared@x. Day 1 (dies after writing the labels): customer 6 takes
    shared@x too, three accounts, rejected: 3 and 4 lose their edges. Day 2 (the retry, from day 0's load):
    customer 6 moves to other@x and shared@x links 3 and 4 again, with the edges it had on day 0. Had the
    labels of day 1 been kept without emptying the list, day 2 would see no change of shared@x and leave 3
    and 4 apart."""
    wh = make_warehouse("labels-crash")
    sc = rows.shop_customer
    wh.insert("shop_customers", [sc(3, email="shared@x.com"), sc(4, email="shared@x.com"), sc(5, email="e@x.com")])
    day_zero_build(wh)
    labels0 = wh.query(LABELS)
    assert len(labels0) == 2
    region0 = wh.query(f"select node from {REGION}")

    wh.insert("shop_customers", [sc(6, email="shared@x.com")], run_id="d1", extracted_at=DAY1)
    with _region_list_blocked(wh), pytest.raises(TransformError) as crash:
        _incremental_build(wh, "d1", DAY0_LOADED)
    # it died in the labels, on the region's append (after their write: the log has it), not before
    [(node, message)] = crash.value.failures
    assert node == "model:int_identity_labels" and "int_identity_labels__region" in message, message
    labelling = (dbt_dirs(wh.settings)[1] / "dbt.log").read_text().split(
        "START sql label_propagation model intermediate.int_identity_labels")[-1]  # fmt: skip
    assert re.search(r'insert into "[^"]+"\."intermediate"\."int_identity_labels" select node, label', labelling)
    assert wh.query(LABELS) == labels0
    assert wh.query(f"select node from {REGION}") == region0
    # the images day 1 saved wait for the retry: shared@x's two edges, customer 6's own id without any
    assert wh.query(f"select identifier_value, count(node) from {BEFORE} group by 1 order by 1") == [
        ("6", 0), ("shared@x.com", 2)]  # fmt: skip

    wh.insert("shop_customers", [sc(6, email="other@x.com", updated_at="2025-06-02 00:00:00")],
              run_id="d2", extracted_at=DAY2)  # fmt: skip
    _incremental_build(wh, "d2", DAY0_LOADED)
    assert _clusters(wh) == {frozenset({"orders.customer:3", "orders.customer:4"}),
                             frozenset({"orders.customer:5"}), frozenset({"orders.customer:6"})}  # fmt: skip
    assert _full_rebuild_differences(wh, "d2", tmp_path_factory.mktemp("labels-crash-full"), data_tests=False) == {}


def test_an_erasure_drops_the_labels_state_and_the_next_build_labels_in_full(
    make_warehouse, rows, tmp_path_factory, monkeypatch
) -> None:
    """Day 0: A = {customer 1, helpdesk user 10} (a@x), B = {customer 2, contact b1} (b@x). B is erased; day
    1: guest order 102 joins A. The pending images hold clear values, the labels and their region B's record
    keys: all dropped, so day 1 labels in full, and equals a rebuild."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    wh = make_warehouse("labels-erasure")
    wh.insert("shop_customers", [rows.shop_customer(1, email="a@x.com"), rows.shop_customer(2, email="b@x.com")])
    wh.insert("helpdesk_users", [rows.helpdesk_user(10, email="a@x.com")])
    wh.insert("esp_contacts", [rows.esp_contact("b1", email="b@x.com")])
    day_zero_build(wh)

    result = forget(wh.settings, ["b@x.com"])
    assert result.status == {"b@x.com": "erased"}
    labels = "intermediate.int_identity_labels"
    assert set(result.dropped) == {
        labels,
        BEFORE,
        f"{labels}__region",
        "intermediate.int_identity_clusters_propagated__changed",
    }

    wh.insert("shop_orders", [rows.shop_order(102, email="a@x.com")], run_id="d1", extracted_at=DAY1)
    _incremental_build(wh, "d1", DAY0_LOADED, clusters_by_region=False)  # the region went with the labels
    assert _last_labelling(wh) == "full"
    assert _clusters(wh) == {frozenset({"orders.customer:1", "helpdesk.user:10", "orders.guest_order:102"})}
    assert _full_rebuild_differences(wh, "d1", tmp_path_factory.mktemp("labels-erasure-full"), data_tests=False) == {}
