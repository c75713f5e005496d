"""Every dbt unit test of the project runs in the test suite and passes.

Production builds leave unit tests out (`dbt_build(unit_tests=False)`, the Airflow layer tasks): they check
SQL on fixed fixtures, whatever the data, so running them every day only costs time. Here they all run, on
an empty warehouse whose models are built first (a unit test needs its model's inputs to exist). Slow: the
whole project is built (empty) once.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
import yaml

from rapport.transform.project import DBT_PROJECT_DIR
from rapport.transform.runner import dbt_build, dbt_dirs

pytestmark = pytest.mark.slow


def test_every_unit_test_of_the_project_runs_and_passes(make_warehouse):
    wh = make_warehouse("unit-tests")
    # models (empty: no raw rows) and unit tests; data tests on empty tables would add time and nothing else
    dbt_build(wh.settings, run_id="unit-tests", as_of=date(2025, 6, 30), unit_tests=True,
              extra_args=["--exclude-resource-type", "test"])  # fmt: skip
    results = json.loads((dbt_dirs(wh.settings)[0] / "run_results.json").read_text())["results"]
    ran = {
        tuple(r["unique_id"].split(".")[2:4]): r["status"] for r in results if r["unique_id"].startswith("unit_test.")
    }
    # (model, name) of every unit test declared in the project's YAML, read without dbt
    declared = {
        (t["model"], t["name"])
        for path in (DBT_PROJECT_DIR / "models").rglob("*.yml")
        for t in (yaml.safe_load(path.read_text()) or {}).get("unit_tests") or []
    }
    assert len(declared) >= 20, declared  # 25 when written
    assert {key: ran.get(key) for key in declared} == dict.fromkeys(declared, "pass")


@pytest.mark.parametrize("unit_tests", [False, True])
def test_production_builds_leave_unit_tests_out(make_warehouse, unit_tests):
    wh = make_warehouse(f"unit-tests-{unit_tests}")
    dbt_build(wh.settings, run_id="prod", as_of=date(2025, 6, 30), select=["stg_shop__orders"],
              extra_args=["--indirect-selection", "cautious"], unit_tests=unit_tests)  # fmt: skip
    ran = json.loads((dbt_dirs(wh.settings)[0] / "run_results.json").read_text())["results"]
    kinds = {r["unique_id"].split(".")[0] for r in ran}
    assert "model" in kinds
    assert ("unit_test" in kinds) is unit_tests  # stg_shop__orders has unit tests: only asked for, they run
