"""The gates' Great Expectations context lives in memory (one per warehouse per process), with validation results
and Data Docs on disk: nothing a process made may leak into a later run's validation, and every run stays on
record. Here three runs in one warehouse, the frame of `raw_shop_orders` in 1, then 3, then 2 parts (at most
two rows a part), the last two in fresh processes as Airflow tasks would be: every part of each run is
validated, a bad row in any part fails the gate, and Data Docs keep a page per part and run and an index
listing every run. Slow: GX's import and three raw gates."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import duckdb
import pytest
from expectation_helpers import land, land_clean_sources, order, settings_for

from rapport.expectations import gx_runner
from rapport.expectations.gate import CheckFailed, run_raw_checks

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)
NOT_NULL_ID = "expect_column_values_to_not_be_null(id)"
NON_NEGATIVE_TOTAL = "expect_column_values_to_be_between(total)"


def _new_process() -> None:
    """Forget the context this process made, as the next task's process would not have it."""
    gx_runner._contexts.clear()


def _stored(settings, suite: str, run_id: str) -> list[dict]:
    folder = settings.warehouse_dir / "gx" / "uncommitted" / "validations" / suite / run_id
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.rglob("*.json"))]


def _row(con, run_id: str, expectation: str) -> tuple:
    return con.execute("select success, element_count, unexpected_count from ops.check_results "
                       "where run_id = ? and suite = 'raw_shop_orders' and expectation = ?",
                       [run_id, expectation]).fetchone()


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    wh = tmp_path_factory.mktemp("gxctx") / "warehouse"
    settings = dataclasses.replace(settings_for(wh), check_chunk_rows=2)
    con = duckdb.connect(str(wh / "work.duckdb"))
    land_clean_sources(con, "r0")  # two orders (ids 10, 11): one part
    run_raw_checks(con, settings, run_id="r0", interval_end=END)
    land(con, "shop_orders", [order(id=i) for i in range(30, 35)], "r1")  # 5 orders: 3 parts
    _new_process()
    run_raw_checks(con, settings, run_id="r1", interval_end=END)
    # 3 orders, 2 parts; one negative total (its parts add up), in whichever part its id hashes to
    land(con, "shop_orders", [order(id=40), order(id=41), order(id=42, total=-5, subtotal=-5)], "r2")
    _new_process()
    with pytest.raises(CheckFailed) as failed:
        run_raw_checks(con, settings, run_id="r2", interval_end=END)
    yield settings, con, failed.value
    con.close()


def test_every_part_of_each_run_is_validated(three_runs):
    settings, con, _ = three_runs
    for run_id, parts, rows in [("r0", 1, 2), ("r1", 3, 5), ("r2", 2, 3)]:
        stored = _stored(settings, "raw_shop_orders", run_id)
        assets = sorted(r["meta"]["active_batch_definition"]["data_asset_name"] for r in stored)
        expected = ["raw_shop_orders"] if parts == 1 else [f"raw_shop_orders.part{i}of{parts}"
                                                           for i in range(1, parts + 1)]
        assert assets == expected, run_id
        counted = [res["result"]["element_count"] for r in stored for res in r["results"]
                   if res["expectation_config"]["type"] == "expect_column_values_to_not_be_null"
                   and res["expectation_config"]["kwargs"]["column"] == "id"]
        assert len(counted) == parts and sum(counted) == rows, run_id  # the parts hold every row (one may be empty)
        assert _row(con, run_id, NOT_NULL_ID) == (True, rows, 0)


def test_a_bad_row_in_a_later_process_fails_the_gate(three_runs):
    _, con, failed = three_runs
    assert _row(con, "r1", NON_NEGATIVE_TOTAL) == (True, 5, 0)
    assert _row(con, "r2", NON_NEGATIVE_TOTAL) == (False, 3, 1)
    assert "42 | -5" in str(failed)


def test_data_docs_keep_every_run_and_part(three_runs):
    settings, _, _ = three_runs
    docs = settings.warehouse_dir / "data_docs"
    folder = docs / "validations" / "raw_shop_orders"
    pages = {run: len(list((folder / run).rglob("*.html"))) for run in ("r0", "r1", "r2")}
    assert pages == {"r0": 1, "r1": 3, "r2": 2}
    index = (docs / "index.html").read_text(encoding="utf-8")
    for run in ("r0", "r1", "r2"):  # the index links the pages of every run, not only the last process's
        assert f"validations/raw_shop_orders/{run}/" in index
    assert "expectations/raw_shop_orders.html" in index and (docs / "expectations" / "raw_shop_orders.html").exists()


def test_no_project_config_is_written(three_runs):
    """The context is not file-backed: no great_expectations.yml that a killed process could leave cut short,
    and no stored suites, definitions or checkpoints to read back."""
    settings, _, _ = three_runs
    gx = settings.warehouse_dir / "gx"
    assert not (gx / "great_expectations.yml").exists()
    assert not any((gx / d).exists() for d in ("checkpoints", "validation_definitions", "expectations"))
