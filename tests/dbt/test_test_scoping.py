"""dbt's generic uniqueness tests on a day build check what the day wrote (issue 16, docs/quality.md
"dbt tests on a day build"): a duplicate the day makes fails the build, a build without `since` checks the
whole table, and a duplicate among rows the day did not touch is left to the build that made it.

Hand-made warehouse, day 0 (landed 2025-06-30): ESP events e1 (a@x), e2 (b@x); shop customers 1 (a@x) and 2
(z@x). Audiences of campaigns k1 and k2 (a@x each).
Day 1 (landed 2025-07-01) lands event e3 and, per test, a duplicate or a record sharing a value.
Each test copies day 0's warehouse and runs incremental dbt commands with `since` = day 0's load time, as
rapport.transform.runner does for a day after a build that passed (selective builds never commit the
ledger, so the var is passed here).
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
DAY0_LOADED = "2025-06-30 00:00:00"  # tests/dbt/conftest.py's default load time
DAY1_LOADED = "2025-07-01 00:00:00"
SELECT = ["+stg_esp__events", "+stg_esp__audiences", "+int_identity_identifiers_unpivoted"]
EVENTS_UNIQUE = "unique_combination_stg_esp__events_sg_event_id"
AUDIENCES_UNIQUE = "unique_combination_stg_esp__audiences_audience_member_id"
IDENTIFIERS_UNIQUE = "unique_combination_int_identity_identifiers_unpivoted_record_id"


def _dbt(wh: Any, command: str, since: str | None) -> dict[str, dict[str, Any]]:
    return dbt_nodes(wh, command, SELECT, since, AS_OF)


def _node(nodes: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    (name,) = [n for n in nodes if n.startswith(prefix)]
    return nodes[name]


def _copy(wh: Any, directory: Path) -> Any:
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(directory)})
    settings.work_db.parent.mkdir(parents=True)
    shutil.copyfile(wh.path, settings.work_db)
    return type(wh)(settings)


@pytest.fixture(scope="module")
def day0(make_warehouse: Any, rows: Any) -> Any:
    wh = make_warehouse("scoping")
    wh.insert("esp_events", [rows.esp_event("e1", "a@x.com", "delivered"),
                             rows.esp_event("e2", "b@x.com", "delivered")])  # fmt: skip
    wh.insert("shop_customers", [rows.shop_customer(1, email="a@x.com"), rows.shop_customer(2, email="z@x.com")])
    wh.insert("esp_campaigns", [rows.esp_campaign("k1"), rows.esp_campaign("k2")])
    wh.insert("esp_audiences", [{"campaign_id": k, "email": "a@x.com", "group": "treatment"} for k in ("k1", "k2")])
    nodes = _dbt(wh, "build", None)
    assert {n["status"] for n in nodes.values()} <= {"success", "pass"}, nodes
    # the whole-table form when the build has no `since`
    assert "_extracted_at >" not in _node(nodes, EVENTS_UNIQUE)["compiled_code"]
    return wh


def test_a_duplicate_event_landed_today_fails_the_day_build(day0: Any, rows: Any, tmp_path: Path) -> None:
    wh = _copy(day0, tmp_path)
    # landing de-duplicates webhook retries; written by hand, e1 lands a second time
    wh.insert("esp_events", [rows.esp_event("e3", "c@x.com", "open"), rows.esp_event("e1", "a@x.com", "delivered")],
              run_id="r2", extracted_at=DAY1_LOADED)  # fmt: skip
    nodes = _dbt(wh, "build", DAY0_LOADED)
    assert wh.query("select sg_event_id, count(*) from staging.stg_esp__events group by all order by 1") == [
        ("e1", 2),
        ("e2", 1),
        ("e3", 1),
    ]
    test = _node(nodes, EVENTS_UNIQUE)
    assert "_extracted_at >" in test["compiled_code"]  # the scoped form ran
    assert (test["status"], test["failures"]) == ("fail", 1)


def test_the_day_checks_its_rows_a_build_without_since_every_row(day0: Any, rows: Any, tmp_path: Path) -> None:
    wh = _copy(day0, tmp_path)
    # a duplicate of day 0's e2 between the builds (no build of the day writes e2)
    execute_sql(
        wh, "insert into staging.stg_esp__events select * from staging.stg_esp__events where sg_event_id = 'e2'"
    )
    wh.insert("esp_events", [rows.esp_event("e3", "c@x.com", "open")], run_id="r2", extracted_at=DAY1_LOADED)
    nodes = _dbt(wh, "build", DAY0_LOADED)
    assert _node(nodes, EVENTS_UNIQUE)["status"] == "pass"  # only e3's key is checked
    whole = _node(_dbt(wh, "test", None), EVENTS_UNIQUE)
    assert (whole["status"], whole["failures"]) == ("fail", 1)


def test_identifiers_check_every_row_of_the_values_the_day_touched(day0: Any, rows: Any, tmp_path: Path) -> None:
    wh = _copy(day0, tmp_path)
    # duplicates of two rows of records the day does not touch: customer 1's a@x, customer 2's z@x
    execute_sql(wh, "insert into intermediate.int_identity_identifiers_unpivoted "
                 "select * from intermediate.int_identity_identifiers_unpivoted "
                 "where identifier_type = 'email' "
                 "and record_id in ('orders.customer:1', 'orders.customer:2')")  # fmt: skip
    # day 1: contact k1 carries a@x too, so the value a@x is touched (listed in __touched), z@x is not
    wh.insert("esp_contacts", [rows.esp_contact("k1", email="a@x.com")], run_id="r2", extracted_at=DAY1_LOADED)
    nodes = _dbt(wh, "build", DAY0_LOADED)
    assert wh.query(
        "select identifier_value from intermediate.int_identity_identifiers_unpivoted__touched "
        "where identifier_type = 'email'"
    ) == [("a@x.com",)]
    test = _node(nodes, IDENTIFIERS_UNIQUE)
    assert "__touched" in test["compiled_code"]
    assert (test["status"], test["failures"]) == ("fail", 1)  # a@x's group: customer 1's row twice
    whole = _node(_dbt(wh, "test", None), IDENTIFIERS_UNIQUE)
    assert (whole["status"], whole["failures"]) == ("fail", 2)  # and z@x's


def test_audiences_check_every_row_of_the_campaigns_landed_today(day0: Any, tmp_path: Path) -> None:
    wh = _copy(day0, tmp_path)
    # duplicates of day 0's rows of k1 and k2; the day lands a row of k1 only (a late audience file)
    execute_sql(wh, "insert into staging.stg_esp__audiences select * from staging.stg_esp__audiences")
    wh.insert("esp_audiences", [{"campaign_id": "k1", "email": "b@x.com", "group": "control"}], run_id="r2",
              extracted_at=DAY1_LOADED)  # fmt: skip
    # the staging build replaces k1's rows (its duplicate goes); k2's duplicate stays, outside the day
    nodes = _dbt(wh, "build", DAY0_LOADED)
    assert wh.query("select audience_member_id, count(*) from staging.stg_esp__audiences group by all order by 1") == [
        ("k1:a@x.com", 1),
        ("k1:b@x.com", 1),
        ("k2:a@x.com", 2),
    ]
    assert _node(nodes, AUDIENCES_UNIQUE)["status"] == "pass"
    whole = _node(_dbt(wh, "test", None), AUDIENCES_UNIQUE)
    assert (whole["status"], whole["failures"]) == ("fail", 1)
    # k2 landing too puts its duplicate in the day's scope
    wh.insert("esp_audiences", [{"campaign_id": "k2", "email": "c@x.com", "group": "control"}], run_id="r3",
              extracted_at="2025-07-02 00:00:00")  # fmt: skip
    execute_sql(wh, "insert into staging.stg_esp__audiences select * from staging.stg_esp__audiences "
                 "where audience_member_id = 'k1:b@x.com'")  # fmt: skip
    # rows landed after day 1: k2's only, so k2's groups (its old duplicate) are checked, not k1's
    scoped = _node(_dbt(wh, "test", DAY1_LOADED), AUDIENCES_UNIQUE)
    assert (scoped["status"], scoped["failures"]) == ("fail", 1)
    scoped = _node(_dbt(wh, "test", DAY0_LOADED), AUDIENCES_UNIQUE)
    assert (scoped["status"], scoped["failures"]) == ("fail", 2)  # k1:b@x and k2:a@x


def test_identifiers_check_every_row_without_a_list_of_the_day(day0: Any, rows: Any, tmp_path: Path) -> None:
    wh = _copy(day0, tmp_path)
    # the identifiers' table dropped: the day rebuilds it in full under `since` and lists the marker row
    execute_sql(wh, "drop table intermediate.int_identity_identifiers_unpivoted")
    wh.insert("esp_contacts", [rows.esp_contact("k1", email="a@x.com")], run_id="r2", extracted_at=DAY1_LOADED)
    _dbt(wh, "build", DAY0_LOADED)
    assert wh.query("select count(*) from intermediate.int_identity_identifiers_unpivoted__touched "
                    "where identifier_type is null") == [(1,)]  # fmt: skip
    # a duplicate of customer 2's z@x, a value no record the day touched carries
    execute_sql(wh, "insert into intermediate.int_identity_identifiers_unpivoted "
                 "select * from intermediate.int_identity_identifiers_unpivoted "
                 "where record_id = 'orders.customer:2' and identifier_type = 'email'")  # fmt: skip
    marked = _node(_dbt(wh, "test", DAY0_LOADED), IDENTIFIERS_UNIQUE)
    assert "__touched" not in marked["compiled_code"]
    assert (marked["status"], marked["failures"]) == ("fail", 1)
    # no list at all: every row too
    execute_sql(wh, "drop table intermediate.int_identity_identifiers_unpivoted__touched")
    missing = _node(_dbt(wh, "test", DAY0_LOADED), IDENTIFIERS_UNIQUE)
    assert (missing["status"], missing["failures"]) == ("fail", 1)
