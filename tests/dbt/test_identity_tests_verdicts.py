"""The identity tests whose SQL was rewritten to cost less (docs/quality.md "dbt tests on a day build") fail on
every kind of bad data the earlier forms caught, and pass on clean data: assert_identity_records_appear_once
(one grouped pass instead of a join and an anti-join), assert_customer_ids_follow_clusters over every row (the
distinct id-anchor pairs counted instead of two count(distinct)) and `unique_combination` over every row
(a hash pre-grouping on DuckDB, macros/test_unique_combination.sql).

Hand-made warehouse, built once: shop customers 1-3 (p1-p3@x.com), an order of customer 1 and a guest order
11, helpdesk user 5 (p1@x.com: customer 1's cluster), ESP contact k1 (p2@x.com: customer 2's cluster) and an
audience member of campaign cmp1 (p3@x.com). Each case writes a bug's rows into a copy by hand and runs the
five tests; the failure counts (rows each test returns) are counted from the rows written.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from dbt_nodes import dbt_nodes, execute_sql

from rapport.core.config import load_settings

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
IDS = "intermediate.int_customer_ids_assigned"
APPEAR = "assert_identity_records_appear_once"
FOLLOW = "assert_customer_ids_follow_clusters"
UNIQUE_PAIR = "unique_combination_int_customer_ids_assigned_record_id__customer_id"
UNIQUE_CURRENT = "unique_combination_int_customer_ids_assigned_record_id"
UNIQUE_IDENTITY = "unique_combination_customer_identities_source__source_id"
TESTS = [APPEAR, FOLLOW, UNIQUE_PAIR, UNIQUE_CURRENT, UNIQUE_IDENTITY]

C1, C2, H5, K1 = "orders.customer:1", "orders.customer:2", "helpdesk.user:5", "esp.contact:k1"


def _id_of(record: str) -> str:
    return f"(select customer_id from {IDS} where record_id = '{record}' and is_current)"


def _anchor_of(record: str) -> str:
    return f"(select anchor_record_id from {IDS} where record_id = '{record}' and is_current)"


def _copy_of(record: str, replace: str, *, is_current: bool = True) -> str:
    return (f"insert into {IDS} select * replace ({replace}, {str(is_current).lower()} as is_current) "
            f"from {IDS} where record_id = '{record}' and is_current")  # fmt: skip


# case: (the bug's statements, {test: rows it returns}; tests not named return none)
CASES: dict[str, tuple[list[str], dict[str, int]]] = {
    "clean": ([], {}),
    # customer 1's record appears twice; its anchor holds two ids
    "a second current id of a record": (
        [_copy_of(C1, "'cdup' as customer_id")],
        {APPEAR: 1, FOLLOW: 1, UNIQUE_CURRENT: 1, UNIQUE_IDENTITY: 1},
    ),
    "the same pair twice": (
        [_copy_of(C1, "customer_id as customer_id")],
        {APPEAR: 1, UNIQUE_PAIR: 1, UNIQUE_CURRENT: 1, UNIQUE_IDENTITY: 1},
    ),
    # the helpdesk user is still in customer 1's cluster
    "a record without a current id": (
        [f"update {IDS} set is_current = false where record_id = '{H5}'"],
        {APPEAR: 1, FOLLOW: 1},
    ),
    "a current id of a record no source or cluster has": (
        [_copy_of(C1, f"'{C1}9' as record_id, '19' as source_id")],
        {APPEAR: 1, FOLLOW: 1},
    ),
    # customer 2 missing, a customer 98 that is no source record
    "a record under another source id": (
        [f"update {IDS} set source_id = '98' where record_id = '{C2}'"],
        {APPEAR: 2},
    ),
    # a null key matches no expected record
    "a null source id": (
        [_copy_of(C1, f"'{C1}7' as record_id, null as source_id")],
        {APPEAR: 1, FOLLOW: 1},
    ),
    "an expected record with a null id": (
        ["insert into staging.stg_esp__contacts select * replace (null as contact_id) from staging.stg_esp__contacts"],
        {APPEAR: 1},
    ),
    # both records of customer 2's cluster take customer 1's id: one id, two anchors
    "an id on two anchors": (
        [f"update {IDS} set customer_id = {_id_of(C1)} where anchor_record_id = {_anchor_of(C2)} and is_current"],
        {FOLLOW: 1},
    ),
    # one record of customer 2's cluster gets a new id: that anchor holds two ids
    "an anchor with two ids": (
        [f"update {IDS} set customer_id = 'cnew' where record_id = '{K1}'"],
        {FOLLOW: 1},
    ),
    # the helpdesk user recorded with customer 2's anchor: its record, customer 1's id on two anchors,
    # customer 2's anchor with two ids
    "a record with another cluster's anchor": (
        [f"update {IDS} set anchor_record_id = {_anchor_of(C2)} where record_id = '{H5}'"],
        {FOLLOW: 3},
    ),
    # nulls group as values: the null id sits on two anchors (each anchor keeps one non-null id)
    "a null id on two anchors": (
        [f"update {IDS} set customer_id = null where record_id in ('{C1}', '{C2}')"],
        {FOLLOW: 1},
    ),
    # only the record's own anchor is wrong: an id with one anchor and a null one is no second anchor
    "a record with a null anchor": (
        [f"update {IDS} set anchor_record_id = null where record_id = '{H5}'"],
        {FOLLOW: 1},
    ),
    # two retired pairs with a null record and one id: one group of the pairs' test, none of the current ones
    "a null key twice among retired pairs": (
        [_copy_of(C1, "null as record_id, 'cx' as customer_id", is_current=False)] * 2,
        {UNIQUE_PAIR: 1},
    ),
}


@pytest.fixture(scope="module")
def built(make_warehouse: Any, rows: Any) -> Any:
    wh = make_warehouse("verdicts")
    wh.insert("shop_customers", [rows.shop_customer(i, email=f"p{i}@x.com") for i in (1, 2, 3)])
    wh.insert("shop_orders", [rows.shop_order(10, customer_id=1), rows.shop_order(11, email="g@x.com")])
    wh.insert("helpdesk_users", [rows.helpdesk_user(5, email="p1@x.com")])
    wh.insert("esp_contacts", [rows.esp_contact("k1", email="p2@x.com")])
    wh.insert("esp_audiences", [{"campaign_id": "cmp1", "email": "p3@x.com", "group": "treatment"}])
    wh.build()
    assert sorted(r for (r,) in wh.query(f"select record_id from {IDS}")) == sorted(
        [C1, C2, "orders.customer:3", "orders.guest_order:11", H5, K1, "esp.audience_member:cmp1:p3@x.com"]
    )
    return wh


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_bad_row_fails_its_tests(built: Any, case: str, tmp_path: Path) -> None:
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path)})
    settings.work_db.parent.mkdir(parents=True)
    shutil.copyfile(built.path, settings.work_db)
    wh = type(built)(settings)
    statements, expected = CASES[case]
    for sql in statements:
        execute_sql(wh, sql)
    nodes = dbt_nodes(wh, "test", TESTS, None, AS_OF)
    assert "last_assigned_at >" not in nodes[FOLLOW]["compiled_code"]  # no `since`: every row
    found = {name: (nodes[name]["status"], nodes[name]["failures"]) for name in TESTS}
    assert found == {name: ("fail", expected[name]) if name in expected else ("pass", 0) for name in TESTS}
