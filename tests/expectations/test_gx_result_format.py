"""The gates ask Great Expectations for SUMMARY results without the unexpected-row query (which SUMMARY drops
anyway, and which cost a whole-frame filter per column expectation): a failed expectation's stored result
still carries its offending values and their row indices, and a checkpoint stored by an earlier version
(without that setting) is replaced. Slow: GX's import and a raw gate."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest
from expectation_helpers import land, land_clean_sources, order, settings_for

from rapport.expectations import gx_runner
from rapport.expectations.gate import CheckFailed, run_raw_checks

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)


def _stored_results(settings, run_id: str) -> list[dict]:
    folder = settings.warehouse_dir / "gx" / "uncommitted" / "validations" / "raw_shop_orders" / run_id
    return [r for path in folder.rglob("*.json") for r in json.loads(path.read_text(encoding="utf-8"))["results"]]


def test_a_failed_expectation_keeps_its_offending_values_and_an_old_checkpoint_is_replaced(tmp_path):
    settings = settings_for(tmp_path / "warehouse")
    con = duckdb.connect(str(tmp_path / "warehouse" / "work.duckdb"))
    land_clean_sources(con, "r0")
    run_raw_checks(con, settings, run_id="r0", interval_end=END)

    # the stored checkpoint as an earlier version wrote it; a new process (no cached checkpoint) reads it
    stored = settings.warehouse_dir / "gx" / "checkpoints" / "rapport_raw_gate.json"
    config = json.loads(stored.read_text(encoding="utf-8"))
    config["result_format"] = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
    stored.write_text(json.dumps(config), encoding="utf-8")
    gx_runner._checkpoints.clear()

    land(con, "shop_orders", [order(id=22, status="teleported")], "r1")
    with pytest.raises(CheckFailed):
        run_raw_checks(con, settings, run_id="r1", interval_end=END)
    con.close()

    assert json.loads(stored.read_text(encoding="utf-8"))["result_format"] == {
        "result_format": "SUMMARY",
        "partial_unexpected_count": 20,
        "return_unexpected_index_query": False,
    }
    failed = [
        r
        for r in _stored_results(settings, "r1")
        if not r["success"] and r["expectation_config"]["kwargs"].get("column") == "status"
    ]
    assert len(failed) == 1
    result = failed[0]["result"]
    assert result["unexpected_count"] == 1
    assert result["partial_unexpected_list"] == ["teleported"]
    assert len(result["partial_unexpected_index_list"]) == 1
    assert "unexpected_index_query" not in result
