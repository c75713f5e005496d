"""The raw checks of a daily run look at its new batch only, and a bad row in that batch still stops the run.

Through the pipeline step (`rapport.pipeline.steps.check_raw`, Great Expectations included) on a hand-made
warehouse: a first load of every raw table passes; a later batch with two good order rows and one bad one
fails, and Great Expectations was handed exactly the three rows of that batch, not the orders checked
before. A run that landed nothing after the marts were built and checked skips the gate (no GX at all), except
for suites marked `every_run` (about what did not arrive).
Slow: two gates with Great Expectations.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import duckdb
import pytest
from expectation_helpers import land, land_clean_sources, order

from rapport.core.config import load_settings
from rapport.core.run_context import RunContext
from rapport.expectations import gate
from rapport.expectations.catalog import suites_for
from rapport.expectations.gate import CheckFailed
from rapport.pipeline import steps
from rapport.transform import build_state

pytestmark = pytest.mark.slow

END = datetime(2026, 3, 1)
ROW_EXPECTATION = "expect_column_values_to_be_in_set(status)"  # row-wise: element_count = rows handed to GX


def _ctx(run_id: str) -> RunContext:
    return RunContext.create(run_id, interval_end=END)


def _rows_checked(con: duckdb.DuckDBPyConnection, run_id: str, suite: str) -> int | None:
    rows = con.execute(
        "select element_count from ops.check_results where run_id = ? and suite = ? and expectation = ?",
        [run_id, suite, ROW_EXPECTATION],
    ).fetchall()
    return rows[0][0] if rows else None


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path_factory.mktemp("new-batch"))})
    settings.work_db.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.work_db)) as con:
        land_clean_sources(con, "r0")  # orders 10 and 11
    steps.check_raw(settings, _ctx("r0"))
    with duckdb.connect(str(settings.work_db)) as con:
        # what check_marts records once the marts built from these rows passed
        build_state.record(con, "marts", build_state.inputs_fingerprint(con, as_of=END.date()), "r0")
    unchanged = steps.check_raw(settings, _ctx("r1"))  # nothing landed since
    # a suite about what did not arrive (freshness, say) is validated even then
    flagged = [replace(s, every_run=s.name == "raw_volume") for s in suites_for("raw")]
    monkeypatch.setattr(gate, "suites_for", lambda which: flagged if which == "raw" else suites_for(which))
    every_run = steps.check_raw(settings, _ctx("r1b"))
    monkeypatch.undo()
    with duckdb.connect(str(settings.work_db)) as con:
        land(con, "shop_orders", [
            order(id=12, created_at="2026-02-01 10:00:00", updated_at="2026-02-01 10:00:00"),  # a new order
            order(id=10, status="fulfilled", updated_at="2026-02-02 10:00:00"),  # order 10 moved on
            order(id=13, status="teleported", created_at="2026-02-03 10:00:00", updated_at="2026-02-03 10:00:00"),
        ], "r2")  # fmt: skip
    with pytest.raises(CheckFailed) as failed:
        steps.check_raw(settings, _ctx("r2"))
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        counts = {run: _rows_checked(con, run, "raw_shop_orders") for run in ("r0", "r1", "r2")}
        events = _rows_checked(con, "r2", "raw_esp_events")
        r1_results = con.execute("select count(*) from ops.check_results where run_id = 'r1'").fetchall()[0][0]
        r1b_suites = {r[0] for r in con.execute("select suite from ops.check_results where run_id = 'r1b'").fetchall()}
    return unchanged, failed.value, counts, events, r1_results, every_run, r1b_suites


def test_a_first_load_checks_every_row(batches):
    _, _, counts, *_ = batches
    assert counts["r0"] == 2


def test_a_daily_batch_hands_only_its_own_rows_to_great_expectations(batches):
    _, _, counts, events, *_ = batches
    # orders 12, 13 and the new version of order 10; order 11 (checked in r0, unchanged) is not checked again
    assert counts["r2"] == 3
    assert events is None or events == 0  # no event landed in r2


def test_a_bad_row_in_the_new_batch_still_stops_the_run(batches):
    _, failed, *_ = batches
    bad = {(o.suite, o.expectation) for o in failed.summary.outcomes if not o.success and o.severity == "error"}
    assert bad == {("raw_shop_orders", ROW_EXPECTATION)}
    assert "teleported" in str(failed)


def test_a_run_that_landed_nothing_after_a_checked_build_skips_the_gate(batches):
    unchanged, _, counts, _, r1_results, *_ = batches
    assert unchanged["skipped"] == "unchanged" and unchanged["evaluated"] == 0
    assert counts["r1"] is None and r1_results == 0  # nothing handed to GX, nothing recorded


def test_suites_marked_every_run_are_validated_when_nothing_landed(batches):
    *_, every_run, r1b_suites = batches
    volume = next(s for s in suites_for("raw") if s.name == "raw_volume")
    assert every_run["skipped"] == "unchanged" and every_run["evaluated"] == len(volume.expectations)
    assert r1b_suites == {"raw_volume"}
