"""customer_id stability across runs: unchanged people and people gaining a record keep their id; a merge
keeps the oldest customer's id and retires the other into marts.customer_id_history; a rebuilt warehouse
issues the same ids; rerunning a run changes nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # five dbt builds of models only (~3 s CPU each)

# the marts these tests read and their parents, models only: the claims are the ids, read back here; the data
# tests on these models run on their own fixtures elsewhere (they were ~60% of each build's CPU time)
SELECT = ["+customer_identities", "+customer_id_history", "+customers"]
MODELS_ONLY = ["--indirect-selection", "cautious", "--exclude-resource-type", "test"]


def md5_id(record_id: str) -> str:
    """The documented id of a new cluster: 'c' + first 16 hex digits of md5(anchor record id)."""
    return "c" + hashlib.md5(record_id.encode()).hexdigest()[:16]


def _ids(wh: Any) -> dict[tuple[str, str], str]:
    return {(s, i): c for s, i, c in wh.query("select source, source_id, customer_id from marts.customer_identities")}


def _build(wh: Any, run_id: str) -> None:
    wh.build(run_id=run_id, select=SELECT, extra_args=MODELS_ONLY)


def _run1(wh: Any, rows: Any) -> None:
    wh.insert(
        "shop_customers",
        [
            rows.shop_customer(1, email="alice@x.com", created_at="2024-01-01 00:00:00"),
            rows.shop_customer(2, email="bob@x.com", created_at="2024-02-01 00:00:00"),
            rows.shop_customer(
                3, email="dave@x.com", phone="07700 900123", country="GB", created_at="2023-01-01 00:00:00"
            ),
        ],
        run_id="r1",
    )
    wh.insert("esp_contacts", [rows.esp_contact("c1", email="carol@x.com", created_at="2024-03-01 00:00:00")])


def _run2(wh: Any, rows: Any) -> None:
    # a helpdesk user joins Alice's cluster (created before her shop account: it becomes the anchor)
    wh.insert(
        "helpdesk_users",
        [rows.helpdesk_user(10, email="ALICE@x.com", created_at="2023-06-01 00:00:00")],
        run_id="r2",
    )


def _run3(wh: Any, rows: Any) -> None:
    # a helpdesk user with Bob's email and Dave's phone merges Bob (2024) into Dave (2023, the oldest)
    wh.insert(
        "helpdesk_users",
        [rows.helpdesk_user(11, email="bob@x.com", phone="+44 7700 900123", created_at="2025-01-01 00:00:00")],
        run_id="r3",
    )


@pytest.fixture(scope="module")
def runs(make_warehouse, rows) -> dict[str, Any]:
    wh = make_warehouse("stable")
    _run1(wh, rows)
    _build(wh, "r1")
    after1 = _ids(wh)
    _run2(wh, rows)
    _build(wh, "r2")
    after2 = _ids(wh)
    _run3(wh, rows)
    _build(wh, "r3")
    after3 = _ids(wh)
    history = {r["customer_id"]: r for r in wh.query_dicts("select * from marts.customer_id_history")}
    customers = {r[0] for r in wh.query("select customer_id from marts.customers")}
    _build(wh, "r3")  # the same run again
    rerun = _ids(wh)
    rerun_history = wh.query("select * from marts.customer_id_history order by customer_id")
    history_rows = wh.query("select * from marts.customer_id_history order by customer_id")
    return {
        "wh": wh,
        "after1": after1,
        "after2": after2,
        "after3": after3,
        "history": history,
        "customers": customers,
        "rerun": rerun,
        "rerun_history": rerun_history,
        "history_rows": history_rows,
    }


def test_first_run_ids_come_from_the_anchor(runs: dict[str, Any]) -> None:
    assert runs["after1"] == {
        ("orders.customer", "1"): md5_id("orders.customer:1"),
        ("orders.customer", "2"): md5_id("orders.customer:2"),
        ("orders.customer", "3"): md5_id("orders.customer:3"),
        ("esp.contact", "c1"): md5_id("esp.contact:c1"),
    }


def test_new_record_joins_without_changing_the_id(runs: dict[str, Any]) -> None:
    after1, after2 = runs["after1"], runs["after2"]
    assert {k: after2[k] for k in after1} == after1
    # the joining record is older than Alice's account, yet Alice keeps the id she had
    assert after2[("helpdesk.user", "10")] == after1[("orders.customer", "1")]


def test_merge_keeps_the_oldest_customer_id(runs: dict[str, Any]) -> None:
    after1, after3 = runs["after1"], runs["after3"]
    dave, bob = after1[("orders.customer", "3")], after1[("orders.customer", "2")]
    assert after3[("orders.customer", "2")] == dave
    assert after3[("orders.customer", "3")] == dave
    assert after3[("helpdesk.user", "11")] == dave
    assert bob not in runs["customers"] and dave in runs["customers"]
    retired = runs["history"][bob]
    assert (retired["is_retired"], retired["current_customer_id"]) == (True, dave)
    assert retired["retired_at"] is not None
    current = runs["history"][dave]
    assert (current["is_retired"], current["current_customer_id"]) == (False, dave)


def test_rerun_changes_nothing(runs: dict[str, Any]) -> None:
    assert runs["rerun"] == runs["after3"]
    assert runs["rerun_history"] == runs["history_rows"]


def test_rebuilt_warehouse_issues_the_same_ids_for_unmerged_people(make_warehouse, rows, runs) -> None:
    """Ids of new clusters derive from their oldest record only, so a fresh warehouse loaded with the
    data of runs 1-2 at once gives Bob, Dave and Carol the same ids. Alice's cluster now anchors on the
    older helpdesk user: without the persisted history she would get that record's id instead, which is
    why the assignments are kept in the warehouse (int_customer_ids_assigned, full_refresh disabled)."""
    wh = make_warehouse("rebuilt")
    _run1(wh, rows)
    _run2(wh, rows)
    _build(wh, "fresh")
    fresh = _ids(wh)
    after2 = runs["after2"]
    for key in [("orders.customer", "2"), ("orders.customer", "3"), ("esp.contact", "c1")]:
        assert fresh[key] == after2[key]
    assert fresh[("orders.customer", "1")] == md5_id("helpdesk.user:10")
