"""A build that stops between marts.segment_history_dates (the registry) and marts.segment_history (the log)
leaves a date registered whose log rows were never written; the next build, for a later date, undoes that
registration, so the warehouse equals one where the stopped build never ran.

The stop is real: a dbt build of the registry and its parents only (what a crash, a failing registry test or
an error in the log's SQL leaves). The people are those of test_segment_history (ann, ben, cat, dan; eve, a
shop customer without orders, lands before the second stop). As-of dates: D1 2025-02-01, D2 02-20, E 02-21,
D3 03-01.

Warehouse `stopped`: D1; D2 stopped; E; eve lands; a re-run of D1 stopped (its registry row names the new
run and counts eve); D3. Warehouse `clean`: D1 (a copy of `stopped`'s file after its D1 build); E; eve lands;
D3. After E and after D3 the two have the same log (and both equal the log computed in pandas from the
snapshots of the dates built whole) and the same registry, D1's row restored with its first run's time.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest
from segment_history_logs import build, expected_log, normalised, read_log, read_snapshot, seed

pytestmark = pytest.mark.slow  # nine dbt builds of models only (~4 s CPU each)

D1, D2, E, D3 = date(2025, 2, 1), date(2025, 2, 20), date(2025, 2, 21), date(2025, 3, 1)
STOPPED = ["+segment_history_dates"]  # the registry is written, the log is not
MIGRATION_DATES = "select distinct from_date, to_date from marts.segment_migrations"
REGISTRY = "select as_of_date, run_id, customers, recorded_at from marts.segment_history_dates order by 1"


def _reads_state(wh: Any) -> bool:
    """Whether the last build's segment_history read the state table (a day's fast path) rather than the log."""
    compiled = wh.settings.warehouse_dir / "dbt" / "target" / "compiled" / "rapport" / "models" / "marts"
    return '"intermediate"."segment_history__state"' in (compiled / "segments" / "segment_history.sql").read_text()


def _registry(wh: Any) -> list[tuple[date, str, int]]:
    return [(d, run, n) for d, run, n, _ in wh.query(REGISTRY)]


def _recorded_at(wh: Any, as_of: date) -> datetime:
    return {d: at for d, _, _, at in wh.query(REGISTRY)}[as_of]


@pytest.fixture(scope="module")
def pair(make_warehouse, rows) -> dict[str, Any]:
    stopped = make_warehouse("stopped")
    seed(stopped, rows, ann_orders_again=False)
    build(stopped, as_of=D1, run_id="r-d1")
    d1_snapshot = read_snapshot(stopped)
    # both warehouses start from this one D1 build: the clean one as a copy of the file (the same rows a second
    # build of the same inputs would write, but for their build times)
    clean = make_warehouse("clean")
    shutil.copyfile(stopped.path, clean.path)
    out: dict[str, Any] = {}
    for name, wh in (("stopped", stopped), ("clean", clean)):
        snapshots: dict[date, pd.DataFrame] = {D1: d1_snapshot}
        got: dict[str, Any] = {"wh": wh}

        def build_whole(
            as_of: date, run_id: str, wh: Any = wh, snapshots: dict[date, pd.DataFrame] = snapshots
        ) -> None:
            build(wh, as_of=as_of, run_id=run_id)
            snapshots[as_of] = read_snapshot(wh)

        got["d1_recorded_at"] = _recorded_at(wh, D1)
        if name == "stopped":
            build(wh, as_of=D2, run_id="r-stop", select=STOPPED)
            got["registry_stopped"] = _registry(wh)
        build_whole(E, "r-e")
        got["after_e"] = {"log": normalised(read_log(wh)), "expected": expected_log(snapshots),
                          "registry": _registry(wh), "reads_state": _reads_state(wh),
                          "migration": wh.query(MIGRATION_DATES)}  # fmt: skip
        wh.insert("shop_customers", [rows.shop_customer(4, email="eve@x.com")], run_id="r2")
        if name == "stopped":
            build(wh, as_of=D1, run_id="r-stop2", select=STOPPED)
            got["registry_stopped2"] = _registry(wh)
        build_whole(D3, "r-d3")
        got["after_d3"] = {"log": normalised(read_log(wh)), "expected": expected_log(snapshots),
                           "registry": _registry(wh), "reads_state": _reads_state(wh),
                           "d1_recorded_at": _recorded_at(wh, D1)}  # fmt: skip
        got["raw_log"] = read_log(wh)
        out[name] = got
    return out


def test_the_stops_left_unwritten_registrations(pair):
    """The premise: each stopped build registered its date (or its re-run) without writing the log."""
    stopped = pair["stopped"]
    assert stopped["registry_stopped"] == [(D1, "r-d1", 4), (D2, "r-stop", 4)]
    assert stopped["registry_stopped2"] == [(D1, "r-stop2", 5), (E, "r-e", 4)]


def test_a_later_build_undoes_a_stopped_new_date(pair):
    """E after the stopped D2: D2 is no longer registered, the migrations compare D1 with E, and the log and
    registry are those of the warehouse where D2 never ran (and the log the one computed from snapshots)."""
    stopped, clean = pair["stopped"]["after_e"], pair["clean"]["after_e"]
    assert stopped["registry"] == clean["registry"] == [(D1, "r-d1", 4), (E, "r-e", 4)]
    assert stopped["migration"] == clean["migration"] == [(D1, E)]
    pd.testing.assert_frame_equal(stopped["log"], clean["log"])
    pd.testing.assert_frame_equal(stopped["log"], stopped["expected"])
    # the registry agrees with the log again: the day reads the state table, as without the stop
    assert stopped["reads_state"] and clean["reads_state"]


def test_a_later_build_restores_a_stopped_re_run(pair):
    """D3 after the stopped re-run of D1: D1's row is its first run's again (run, time, and the 4 customers
    the log holds at D1, not the stopped run's 5), and log and registry equal the clean warehouse's."""
    stopped, clean = pair["stopped"], pair["clean"]
    assert stopped["after_d3"]["registry"] == clean["after_d3"]["registry"]
    assert stopped["after_d3"]["registry"] == [(D1, "r-d1", 4), (E, "r-e", 4), (D3, "r-d3", 5)]
    assert stopped["after_d3"]["d1_recorded_at"] == stopped["d1_recorded_at"]
    pd.testing.assert_frame_equal(stopped["after_d3"]["log"], clean["after_d3"]["log"])
    pd.testing.assert_frame_equal(stopped["after_d3"]["log"], stopped["after_d3"]["expected"])
    runs = stopped["raw_log"].groupby("as_of_date")["run_id"].agg(set).to_dict()
    # each date's rows by the run of that date: ben's 02-15 order shows on E, eve enters on D3
    assert runs == {D1: {"r-d1"}, E: {"r-e"}, D3: {"r-d3"}}
    assert stopped["after_d3"]["reads_state"]


def test_a_stopped_first_build_leaves_no_date_behind(make_warehouse, rows):
    """The first build stopped before the log existed: the next build (E) keeps only its own date, and its log
    is everyone entering on E."""
    wh = make_warehouse("stopped_first")
    seed(wh, rows, ann_orders_again=False)
    build(wh, as_of=D1, run_id="r-stop", select=STOPPED)
    assert _registry(wh) == [(D1, "r-stop", 4)]
    build(wh, as_of=E, run_id="r-e")
    assert _registry(wh) == [(E, "r-e", 4)]
    pd.testing.assert_frame_equal(normalised(read_log(wh)), expected_log({E: read_snapshot(wh)}))
    assert wh.query("select count(*), min(change), max(change) from marts.segment_history") == [
        (4, "entered", "entered")
    ]
