"""The first day after a full build: the stable ids' scoped tests check only the pairs written after the passing
build's latest build time (the ledger's `written_through`, passed as the var `written_after`; docs/quality.md
"Written since, by build time"), not every pair the full build stamped.

Hand-made warehouse, through the runner's own ledger calls (plan, dbt, commit): day 0 lands shop customers 1-8
(data time 2025-06-30) and builds in full (8 records, 8 clusters, 8 ids, every pair stamped with that build's
start, in 2026 by the wall clock); its commit records that start as `written_through`. Day 1 lands customer 9
and builds incrementally: one pair stamped with day 1's start. Day 1's `since` (day 0's batch_at, a landing
time) is before every stamp, so a scope by `since` would hold all 9 pairs and the quarter rule would check
every row; the bound holds 1 of 9. A bug's rows are written by hand: before day 1 (stamped with day 0's build
time: among the full build's own pairs, which its whole tests passed) or between day 1's models and its tests.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from dbt_nodes import execute_sql

from rapport.core.config import load_settings
from rapport.transform.runner import commit_increment, dbt_dirs, invoke, plan_increment

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
SELECT = ["+int_customer_ids_assigned"]
UNIQUE = "unique_combination_int_customer_ids_assigned_record_id"
FOLLOW = "assert_customer_ids_follow_clusters"
IDS = "intermediate.int_customer_ids_assigned"


def _dbt(wh: Any, command: str, run_id: str, dbt_vars: dict[str, Any], *extra: str) -> dict[str, dict[str, Any]]:
    """`dbt <command>` of SELECT with the runner's vars for the run; each node's result by name."""
    all_vars = json.dumps({"as_of": AS_OF.isoformat(), "run_id": run_id, **dbt_vars})
    args = [command, "--vars", all_vars, "--select", *SELECT, "--indirect-selection", "cautious", *extra]
    if command == "build":
        args += ["--exclude-resource-type", "unit_test"]
    invoke(wh.settings, args)
    results = json.loads((dbt_dirs(wh.settings)[0] / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r for r in results}


def _record(i: int) -> str:
    return f"orders.customer:{i}"


def _stamps(wh: Any) -> list[datetime]:
    return [t for (t,) in wh.query(f"select distinct last_assigned_at from {IDS} order by 1")]


@pytest.fixture(scope="module")
def full_build(make_warehouse: Any, rows: Any) -> Any:
    """Day 0 built in full and committed, as rapport.transform.runner.dbt_build does it."""
    wh = make_warehouse("scoping_first_day")
    wh.insert("shop_customers", [rows.shop_customer(i, email=f"p{i}@x.com") for i in range(1, 9)])
    plan = plan_increment(wh.settings, "d0")
    assert plan.full_refresh and plan.written_after is None
    nodes = _dbt(wh, "build", "d0", plan.dbt_vars(), "--full-refresh")
    assert {n["status"] for n in nodes.values()} <= {"success", "pass"}, nodes
    assert commit_increment(wh.settings, "d0")
    return wh


def _copy(wh: Any, directory: Path) -> Any:
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(directory)})
    settings.work_db.parent.mkdir(parents=True)
    shutil.copyfile(wh.path, settings.work_db)
    return type(wh)(settings)


def _day1_models(wh: Any, rows: Any) -> dict[str, Any]:
    """Day 1 lands customer 9 and builds its models (tests not run yet); the runner's vars for its tests."""
    (full_start,) = _stamps(wh)  # the full build stamped every pair with its start
    wh.insert("shop_customers", [rows.shop_customer(9, email="p9@x.com")], run_id="r2",
              extracted_at="2025-07-01 00:00:00")  # fmt: skip
    plan = plan_increment(wh.settings, "d1")
    # since: day 0's latest landing; written_after: the full build's start, recorded when it committed
    assert (plan.reason, plan.since, plan.written_after) == ("incremental", datetime(2025, 6, 30), full_start)
    nodes = _dbt(wh, "run", "d1", plan.dbt_vars())
    assert {n["status"] for n in nodes.values()} == {"success"}, nodes
    assert wh.query(f"select record_id from {IDS} where last_assigned_at > ?", [full_start]) == [(_record(9),)]
    return plan.dbt_vars()


def _failures(nodes: dict[str, dict[str, Any]]) -> tuple[tuple[str, int], tuple[str, int]]:
    return (nodes[UNIQUE]["status"], nodes[UNIQUE]["failures"]), (nodes[FOLLOW]["status"], nodes[FOLLOW]["failures"])


def _scoped_after(nodes: dict[str, dict[str, Any]], bound: str) -> bool:
    """Both tests ran their scoped forms, selecting pairs stamped after `bound`."""
    scope = f"last_assigned_at > cast('{bound}' as timestamp)"
    return all(scope in nodes[name]["compiled_code"] for name in (UNIQUE, FOLLOW))


def test_the_first_day_after_a_full_build_checks_its_own_pairs(full_build: Any, rows: Any, tmp_path: Path) -> None:
    wh = _copy(full_build, tmp_path)
    dbt_vars = _day1_models(wh, rows)
    nodes = _dbt(wh, "test", "d1", dbt_vars)
    assert _scoped_after(nodes, dbt_vars["written_after"])  # 1 pair of 9, not every row
    assert _failures(nodes) == (("pass", 0), ("pass", 0))


def test_a_second_current_id_the_first_day_wrote_fails_it(full_build: Any, rows: Any, tmp_path: Path) -> None:
    wh = _copy(full_build, tmp_path)
    dbt_vars = _day1_models(wh, rows)
    # customer 9's record gets a second current id from day 1's build: two ids on its anchor
    execute_sql(wh, f"insert into {IDS} select * replace ('cdup' as customer_id) from {IDS} "
                 f"where record_id = '{_record(9)}'")  # fmt: skip
    nodes = _dbt(wh, "test", "d1", dbt_vars)
    assert _scoped_after(nodes, dbt_vars["written_after"])
    assert _failures(nodes) == (("fail", 1), ("fail", 1))


def test_the_full_builds_own_pairs_are_left_to_a_whole_check(full_build: Any, rows: Any, tmp_path: Path) -> None:
    wh = _copy(full_build, tmp_path)
    # before day 1, stamped with the full build's start (as if it had written them after its tests): record 1
    # gets a second current id, and record 2 takes record 3's id (that id on two anchors)
    (id3,) = wh.query(f"select customer_id from {IDS} where record_id = '{_record(3)}'")[0]
    execute_sql(wh, f"insert into {IDS} select * replace ('cdup' as customer_id) from {IDS} "
                 f"where record_id = '{_record(1)}'")  # fmt: skip
    execute_sql(wh, f"update {IDS} set customer_id = '{id3}' where record_id = '{_record(2)}'")
    dbt_vars = _day1_models(wh, rows)
    day = _dbt(wh, "test", "d1", dbt_vars)
    assert _scoped_after(day, dbt_vars["written_after"])
    assert _failures(day) == (("pass", 0), ("pass", 0))
    # every row (a build without `since`): record 1's two ids, and two groups of the follow test (record 1's
    # anchor with two ids, record 3's id on two anchors)
    whole = _dbt(wh, "test", "d1", {"since": None})
    assert "last_assigned_at >" not in whole[FOLLOW]["compiled_code"]
    assert _failures(whole) == (("fail", 1), ("fail", 2))
