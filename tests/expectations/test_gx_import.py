"""Great Expectations is imported without its SQL (SQLAlchemy) and Spark (PySpark) integrations, which the gates
never use (they validate pandas frames): both are hidden while gx_runner imports GX, and import normally after.
A module some other code imported first is left to GX as it is. Each case runs in a fresh interpreter, where
nothing has imported GX or those modules yet. Slow: GX's import in each, and a raw gate in the first."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HELPERS = Path(__file__).resolve().parent

# Installed here: SQLAlchemy always (Airflow needs it); PySpark with the Spark extra only. (Not read from
# gx_runner: importing it here would import GX in this process.)
INSTALLED = [m for m in ("pyspark", "sqlalchemy") if importlib.util.find_spec(m) is not None]

GATE_IN_A_FRESH_PROCESS = """
import json, sys
from datetime import datetime
from pathlib import Path
import duckdb
sys.path.insert(0, {helpers!r})
from expectation_helpers import land, land_clean_sources, order, settings_for
from rapport.expectations.gate import CheckFailed, run_raw_checks

warehouse = Path({warehouse!r})
settings = settings_for(warehouse)
con = duckdb.connect(str(warehouse / "work.duckdb"))
land_clean_sources(con, "r0")
passed = run_raw_checks(con, settings, run_id="r0", interval_end=datetime(2026, 3, 1))
land(con, "shop_orders", [order(id=22, status="teleported")], "r1")
try:
    run_raw_checks(con, settings, run_id="r1", interval_end=datetime(2026, 3, 1))
    failed = []
except CheckFailed as exc:
    failed = [[o.suite, o.expectation, o.unexpected_count, o.element_count] for o in exc.summary.outcomes
              if not o.success]
loaded = sorted(m for m in {modules!r} if m in sys.modules)
for m in {modules!r}:
    __import__(m)  # hidden only while GX imported: importable again
print(json.dumps({{"passed": len(passed.outcomes), "failed": failed, "loaded": loaded}}))
"""


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_gates_validate_without_importing_sql_or_spark(tmp_path):
    assert "sqlalchemy" in INSTALLED  # else this test would prove nothing
    result = _run(GATE_IN_A_FRESH_PROCESS.format(helpers=str(HELPERS), warehouse=str(tmp_path), modules=INSTALLED))
    assert result["loaded"] == []
    # GX still evaluates: a clean first load passes every raw suite's expectations, a bad status fails its one
    assert result["passed"] > 200
    assert result["failed"] == [["raw_shop_orders", "expect_column_values_to_be_in_set(status)", 1, 1]]


def test_an_integration_already_imported_is_the_one_gx_uses():
    code = """
import sys
import sqlalchemy
import rapport.expectations.gx_runner
from great_expectations.compatibility import sqlalchemy as compat
print(compat.sqlalchemy is sys.modules["sqlalchemy"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"
