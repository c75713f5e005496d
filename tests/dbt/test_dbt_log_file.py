"""dbt's log file (dbt/logs/dbt.log) at RAPPORT_DBT_LOG_LEVEL: at the default, info, it still has what a user
debugging a failed run needs (each node's start and end, the error with the database's message) and none of
the debug events (every statement dbt sends: 19,521 lines in a 100k-person day build against 546); at debug it has the
statements too. Real builds of one staging model on a hand-made warehouse."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Any

import duckdb
import pytest

from rapport.transform.runner import TransformError, dbt_build, dbt_dirs

pytestmark = pytest.mark.slow

MODEL = "stg_shop__customers"
AS_OF = date(2025, 6, 30)
START = re.compile(rf"\[info \].*START sql \w+ model staging\.{MODEL}\b")
STATEMENT = re.compile(rf"\[debug\].*On model\.rapport\.{MODEL}: ")


def _build(settings: Any) -> str:
    """Build MODEL with `settings`; what this build added to dbt's log file."""
    log = dbt_dirs(settings)[1] / "dbt.log"
    before = log.read_text() if log.exists() else ""
    dbt_build(settings, run_id="r1", as_of=AS_OF, select=[MODEL], extra_args=["--indirect-selection", "cautious"])
    after = log.read_text()
    assert after.startswith(before)  # not rotated: a few small builds
    return after[len(before) :]


@pytest.fixture(scope="module")
def logs(make_warehouse, rows) -> dict[str, Any]:
    wh = make_warehouse("dbt-log")
    wh.insert("shop_customers", [rows.shop_customer(1, email="a@x.com")])
    assert wh.settings.dbt_log_level == "info"  # the default
    info = _build(wh.settings)
    debug = _build(replace(wh.settings, dbt_log_level="debug"))
    with duckdb.connect(str(wh.path)) as con:
        con.execute("drop table raw.shop_customers")  # the model's source: its build fails in the database
    with pytest.raises(TransformError) as failed:
        _build(wh.settings)
    return {"info": info, "debug": debug, "failed": failed.value, "failed_log": _last_log(wh)}


def _last_log(wh: Any) -> str:
    return (dbt_dirs(wh.settings)[1] / "dbt.log").read_text().split("Running with dbt=")[-1]


def test_info_has_each_node_start_and_end_and_no_debug_event(logs) -> None:
    info = logs["info"]
    assert START.search(info)
    assert re.search(rf"\[info \].*OK created sql \w+ model staging\.{MODEL}\b", info)
    assert re.search(r"\[info \].*Completed successfully", info)
    assert "[debug]" not in info and not STATEMENT.search(info)


def test_debug_has_the_statements_too(logs) -> None:
    debug = logs["debug"]
    assert START.search(debug) and STATEMENT.search(debug)
    assert f'"staging"."{MODEL}__dbt_tmp"' in debug  # the model's SQL, as dbt sent it


def test_a_failed_node_leaves_its_error_at_info(logs) -> None:
    failed = logs["failed_log"]
    assert "[debug]" not in failed
    assert re.search(rf"\[error\].*ERROR creating sql \w+ model staging\.{MODEL}\b", failed)
    # the summary names the model, with the database's own message (the relation it could not find)
    summary = failed.split(f"[error] [MainThread]:   Runtime Error in model {MODEL} ")[1]
    assert summary.splitlines()[1].strip() == "Catalog Error: Table with name shop_customers does not exist!"
    assert any(node.endswith(MODEL) for node, _ in logs["failed"].failures)
