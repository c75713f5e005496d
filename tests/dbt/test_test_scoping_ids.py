"""The stable ids' tests on a day build check the current pairs written since the last passing build (issue 16,
docs/quality.md "dbt tests on a day build"): `unique_combination(record_id)` on the current pairs of
int_customer_ids_assigned and the last two parts of assert_customer_ids_follow_clusters (one anchor per
current id, one current id per anchor).

Hand-made warehouse: day 0 lands shop customers 1-8 (8 records, 8 clusters, 8 ids); its build runs now, so the
fixture's `since` for day 1 is a wall-clock time after it (as for a day after a day, whose previous build wrote
few pairs). Day 1 lands customer 9 after `since`: its build writes one current pair (1 in 9, under the quarter
above which the tests check every row). A bug's rows are written by hand between the day's models and its
tests: copies of current pairs with another id or anchor, stamped with the day's build time (written by the
day) or with day 0's (older than `since`).
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dbt_nodes import dbt_nodes, execute_sql

from rapport.core.config import load_settings

pytestmark = pytest.mark.slow

AS_OF = date(2025, 6, 30)
SELECT = ["+int_customer_ids_assigned"]
UNIQUE = "unique_combination_int_customer_ids_assigned_record_id"
FOLLOW = "assert_customer_ids_follow_clusters"
IDS = "intermediate.int_customer_ids_assigned"


def _dbt(wh: Any, command: str, since: str | None) -> dict[str, dict[str, Any]]:
    return dbt_nodes(wh, command, SELECT, since, AS_OF)


def _record(i: int) -> str:
    return f"orders.customer:{i}"


@pytest.fixture(scope="module")
def day1(make_warehouse: Any, rows: Any) -> tuple[Any, str]:
    """Day 1 built (models only, its tests not run yet), and its `since`."""
    wh = make_warehouse("scoping_ids")
    wh.insert("shop_customers", [rows.shop_customer(i, email=f"p{i}@x.com") for i in range(1, 9)])
    nodes = _dbt(wh, "build", None)
    assert {n["status"] for n in nodes.values()} <= {"success", "pass"}, nodes
    assert "last_assigned_at >" not in nodes[FOLLOW]["compiled_code"]  # no `since`: every row
    since = datetime.now(UTC).replace(tzinfo=None)
    wh.insert("shop_customers", [rows.shop_customer(9, email="p9@x.com")], run_id="r2",
              extracted_at=str(since + timedelta(seconds=1)))  # fmt: skip
    nodes = _dbt(wh, "run", str(since))
    assert {n["status"] for n in nodes.values()} == {"success"}, nodes
    assert wh.query(f"select record_id from {IDS} where last_assigned_at > ?", [since]) == [(_record(9),)]
    return wh, str(since)


def _copy(day1: tuple[Any, str], directory: Path) -> tuple[Any, str]:
    wh, since = day1
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(directory)})
    settings.work_db.parent.mkdir(parents=True)
    shutil.copyfile(wh.path, settings.work_db)
    return type(wh)(settings), since


def _failures(nodes: dict[str, dict[str, Any]]) -> tuple[tuple[str, int], tuple[str, int]]:
    return (nodes[UNIQUE]["status"], nodes[UNIQUE]["failures"]), (nodes[FOLLOW]["status"], nodes[FOLLOW]["failures"])


def test_the_day_checks_its_pairs_and_passes(day1: tuple[Any, str], tmp_path: Path) -> None:
    wh, since = _copy(day1, tmp_path)
    nodes = _dbt(wh, "test", since)
    assert "last_assigned_at >" in nodes[UNIQUE]["compiled_code"]  # the scoped forms ran
    assert "last_assigned_at >" in nodes[FOLLOW]["compiled_code"]
    assert _failures(nodes) == (("pass", 0), ("pass", 0))


def test_a_second_current_id_the_day_wrote_fails_the_day(day1: tuple[Any, str], tmp_path: Path) -> None:
    wh, since = _copy(day1, tmp_path)
    # customer 9's record gets a second current id from the day's build: two ids on its anchor
    execute_sql(wh, f"insert into {IDS} select * replace ('cdup' as customer_id) from {IDS} "
                 f"where record_id = '{_record(9)}'")  # fmt: skip
    assert _failures(_dbt(wh, "test", since)) == (("fail", 1), ("fail", 1))


def test_an_id_the_day_gave_a_second_anchor_fails_the_day(day1: tuple[Any, str], tmp_path: Path) -> None:
    wh, since = _copy(day1, tmp_path)
    # the day's pair of customer 9 takes customer 1's id: that id is now held on two anchors
    (id1,) = wh.query(f"select customer_id from {IDS} where record_id = '{_record(1)}'")[0]
    execute_sql(wh, f"update {IDS} set customer_id = '{id1}' where record_id = '{_record(9)}'")
    assert _failures(_dbt(wh, "test", since)) == (("pass", 0), ("fail", 1))


def test_a_pair_without_a_build_time_is_checked(day1: tuple[Any, str], tmp_path: Path) -> None:
    wh, since = _copy(day1, tmp_path)
    # no build writes a null last_assigned_at; a second current id for record 1 with none is still checked
    execute_sql(wh, f"insert into {IDS} select * replace ('cdup' as customer_id, null as last_assigned_at) "
                 f"from {IDS} where record_id = '{_record(1)}'")  # fmt: skip
    nodes = _dbt(wh, "test", since)
    assert "last_assigned_at >" in nodes[UNIQUE]["compiled_code"]
    assert _failures(nodes) == (("fail", 1), ("fail", 1))


def test_old_pairs_are_left_to_a_build_without_since(day1: tuple[Any, str], tmp_path: Path) -> None:
    wh, since = _copy(day1, tmp_path)
    # between the builds (stamped with day 0's build): record 1 gets a second current id, and record 2 takes
    # record 3's id (that id on two anchors); no pair the day wrote is involved
    (id3,) = wh.query(f"select customer_id from {IDS} where record_id = '{_record(3)}'")[0]
    execute_sql(wh, f"insert into {IDS} select * replace ('cdup' as customer_id) from {IDS} "
                 f"where record_id = '{_record(1)}'")  # fmt: skip
    execute_sql(wh, f"update {IDS} set customer_id = '{id3}' where record_id = '{_record(2)}'")
    assert _failures(_dbt(wh, "test", since)) == (("pass", 0), ("pass", 0))
    # every row: record 1's two ids, and two groups of the follow test (record 1's anchor, record 3's id)
    whole = _dbt(wh, "test", None)
    assert "last_assigned_at >" not in whole[FOLLOW]["compiled_code"]
    assert _failures(whole) == (("fail", 1), ("fail", 2))


def test_a_day_that_wrote_most_pairs_checks_every_row(day1: tuple[Any, str], tmp_path: Path) -> None:
    wh, _ = _copy(day1, tmp_path)
    (id3,) = wh.query(f"select customer_id from {IDS} where record_id = '{_record(3)}'")[0]
    execute_sql(wh, f"insert into {IDS} select * replace ('cdup' as customer_id) from {IDS} "
                 f"where record_id = '{_record(1)}'")  # fmt: skip
    execute_sql(wh, f"update {IDS} set customer_id = '{id3}' where record_id = '{_record(2)}'")
    # `since` before day 0's build (the first day after a full build): every pair is newer, so every row
    nodes = _dbt(wh, "test", "2025-06-30 00:00:00")
    assert "last_assigned_at >" not in nodes[UNIQUE]["compiled_code"]
    assert "last_assigned_at >" not in nodes[FOLLOW]["compiled_code"]
    assert _failures(nodes) == (("fail", 1), ("fail", 2))
