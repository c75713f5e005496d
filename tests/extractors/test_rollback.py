"""Rolling back runs whose raw data failed the checks (rapport.extractors.rollback).

After the rollback the warehouse is exactly what it was before those runs (raw rows, rejects, extractor
state, the ESP manifest), and the next extraction reads the same source records again and lands what a
run without the failed one would have landed.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from extract_helpers import connect, make_settings, warehouse_state, write_shop
from test_esp_extract import build_tree, ev, write_gz
from test_orders_extract import CUSTOMERS, FX, ITEMS, ORDERS, _order

from rapport.expectations.results import ensure_check_results
from rapport.extractors.esp import extract_esp
from rapport.extractors.orders import extract_orders
from rapport.extractors.rollback import rollback_runs, unvalidated_runs, was_rolled_back

DAY1_END, DAY2_END, DAY3_END = datetime(2025, 8, 2), datetime(2025, 8, 3), datetime(2025, 8, 4)


def warehouse_state_without_meta(state: dict) -> dict:
    return {k: len(v) for k, v in state.items()}


def _pass_checks(con, run_id: str) -> None:
    """What a passing raw gate leaves behind for a run (one row per expectation; one is enough here)."""
    ensure_check_results(con)
    con.execute(
        "insert into ops.check_results (run_id, gate, suite, expectation, severity, success, checked_at) "
        "values (?, 'raw', 'raw_shop_orders', 'x', 'error', true, now())",
        [run_id],
    )


def _extract_all(con, settings, run_id: str, end: datetime) -> None:
    extract_orders(con, settings, run_id=run_id, interval_end=end)
    extract_esp(con, settings, run_id=run_id, interval_end=end)


@pytest.fixture
def sources(tmp_path):
    write_shop(tmp_path / "shop.db", customers=CUSTOMERS, orders=ORDERS, items=ITEMS, fx=FX)
    build_tree(tmp_path / "esp")
    return tmp_path, make_settings(tmp_path)


def _day2_changes(tmp_path) -> None:
    """Day 2 at the sources: a new order, a changed one, a new event file and a changed snapshot."""
    write_shop(
        tmp_path / "shop.db",
        orders=[
            _order(20, 1, 10.0, "2025-08-02T08:00:00Z"),
            _order(11, None, 19.99, "2025-08-02T09:00:00Z", status="refunded"),
        ],
    )
    write_gz(tmp_path / "esp" / "events/dt=2025-08-02/hour=05/part-0001.jsonl.gz", [ev("e20", "open")])


def test_rollback_restores_the_warehouse_and_the_next_run_lands_the_same_records(sources):
    tmp, settings = sources
    con = connect(tmp / "wh.duckdb", settings)
    _extract_all(con, settings, "r1", DAY1_END)
    _pass_checks(con, "r1")
    before = warehouse_state(con, keep_meta=True)
    _day2_changes(tmp)
    _extract_all(con, settings, "r2", DAY2_END)
    landed_by_r2 = warehouse_state(con, keep_meta=False)
    assert {k: len(v) for k, v in landed_by_r2.items()} != warehouse_state_without_meta(before)
    assert unvalidated_runs(con) == ["r2"]

    undone = rollback_runs(con, unvalidated_runs(con), by="r2")
    assert undone.runs == ["r2"]
    assert undone.raw_rows["raw.shop_orders"] == 3  # orders 20, 11 (refunded) and 13 (day 2, not before DAY1_END)
    assert undone.raw_rows["raw.esp_events"] >= 2  # e7 (dt=2025-08-02/hour=00) and e20
    assert undone.states_restored == ["orders.customers.updated_at", "orders.orders.updated_at"]
    assert undone.esp_files >= 2  # the day-2 event partitions
    assert warehouse_state(con, keep_meta=True) == before  # exactly as before r2, metadata included
    assert was_rolled_back(con, "r2") and not was_rolled_back(con, "r1")
    assert unvalidated_runs(con) == []

    # the next run reads the same records again: what r2 had landed, under r3
    _extract_all(con, settings, "r3", DAY2_END)
    assert warehouse_state(con, keep_meta=False) == landed_by_r2
    con.close()


def test_only_unchecked_runs_roll_back_and_a_state_key_returns_to_its_value_before_the_first_of_them(sources):
    tmp, settings = sources
    con = connect(tmp / "wh.duckdb", settings)
    extract_orders(con, settings, run_id="r1", interval_end=DAY1_END)
    _pass_checks(con, "r1")
    state_r1 = con.execute("select source, key, value from ops.extract_state order by 1, 2").fetchall()
    raw_r1 = warehouse_state(con, keep_meta=True)["raw.shop_orders"]
    _day2_changes(tmp)
    extract_orders(con, settings, run_id="r2", interval_end=DAY2_END)  # never checked (its transform failed)
    write_shop(tmp / "shop.db", orders=[_order(30, 2, 7.0, "2025-08-03T08:00:00Z", currency="THB")])
    extract_orders(con, settings, run_id="r3", interval_end=DAY3_END)
    assert (
        con.execute("select count(*) from ops.extract_state_history where run_id in ('r2', 'r3')").fetchall()[0][0] >= 2
    )  # the watermark moved in both runs

    undone = rollback_runs(con, unvalidated_runs(con), by="r3")
    assert undone.runs == ["r2", "r3"]
    assert con.execute("select source, key, value from ops.extract_state order by 1, 2").fetchall() == state_r1
    assert warehouse_state(con, keep_meta=True)["raw.shop_orders"] == raw_r1
    assert sorted(r[0] for r in con.execute("select run_id from ops.raw_rollbacks").fetchall()) == ["r2", "r3"]
    con.close()


def test_a_first_run_that_fails_rolls_back_to_an_empty_warehouse(sources):
    tmp, settings = sources
    con = connect(tmp / "wh.duckdb", settings)
    _extract_all(con, settings, "r1", DAY1_END)
    assert unvalidated_runs(con) == ["r1"]  # no check results at all yet
    rollback_runs(con, ["r1"], by="r1")
    state = warehouse_state(con, keep_meta=True)
    assert all(rows == [] for rows in state.values()), {k: len(v) for k, v in state.items() if v}
    _extract_all(con, settings, "r2", DAY1_END)  # and everything lands again
    assert con.execute("select count(*) from raw.shop_orders").fetchall()[0][0] > 0
    con.close()
