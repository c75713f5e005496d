"""The benchmark's bookkeeping, on hand-made inputs: ratios and goals, the RESULTS.md section update, and the
floor-vs-dbt comparison (which must catch a difference, or the floor's equality check would mean nothing)."""

from __future__ import annotations

import importlib.util
import sys

import duckdb
import pytest

from rapport.core.config import PROJECT_ROOT

pytestmark = pytest.mark.bench
PIPELINE = [
    "start_run",
    "extract_orders",
    "extract_helpdesk",
    "extract_esp",
    "check_raw",
    "transform",
    "predict",
    "check_marts",
    "publish",
    "report",
    "finish_run",
]


def _load(name: str):
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", PROJECT_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rec(seconds: float, **result) -> dict:
    return {"seconds": seconds, "peak_rss_mb": 100.0, "result": result}


def test_ratios_and_goals_from_stage_times():
    md = _load("results_md")
    stages = {k: _rec(10.0) for k in PIPELINE}  # full run: 11 stages x 10 s = 110 s
    stages |= {f"inc_{k}": _rec(1.0) for k in PIPELINE}  # incremental: 11 s = exactly 0.10 of the full run
    stages |= {
        "floor_orders": _rec(4.0),
        "floor_helpdesk": _rec(5.0),
        "floor_esp": _rec(10.0),
        "dlt_orders": _rec(20.0),
        "dlt_helpdesk": _rec(5.0),
        "dlt_esp": _rec(50.0),
        "dbt_subset": _rec(30.0),
        "floor_transform": _rec(99.0, floor_seconds=25.0),
        "dag": _rec(132.0),
    }
    rows = {r["name"]: r for r in md.ratios(stages)}
    orders = rows["extract orders / floor"]
    assert orders["ratio"] == pytest.approx(2.5) and orders["met"] is False
    assert rows["extract helpdesk / floor"]["ratio"] == pytest.approx(2.0) and rows["extract helpdesk / floor"]["met"]
    assert rows["extract all three / floors"]["ratio"] == pytest.approx(30 / 19)
    assert rows["extract helpdesk / dlt"]["ratio"] == pytest.approx(2.0) and not rows["extract helpdesk / dlt"]["met"]
    assert rows["extract all three / dlt"]["ratio"] == pytest.approx(30 / 75) and rows["extract all three / dlt"]["met"]
    # the floor's own time (25 s), not its stage's (which includes the untimed comparison)
    name = "dbt build customers + campaign_performance / hand-written SQL"
    assert rows[name]["ratio"] == pytest.approx(1.2) and rows[name]["met"]
    # "under 10%" is strict: exactly 10% misses
    inc = rows["incremental day (1% new + 1% changed) / full run"]
    assert inc["ratio"] == pytest.approx(0.10) and inc["met"] is False
    dag = rows["whole DAG in-process / sum of its stages run directly"]
    assert dag["ratio"] == pytest.approx(1.2) and dag["met"]


def test_nothing_new_ratio_and_time_to_first_task_from_the_dag_runs():
    md = _load("results_md")
    stages = {"dag": {**_rec(90.0, first_task_seconds=8.5), "process_seconds": 100.0, "cpu_seconds": 80.0},
              "dag_unchanged": {**_rec(20.0, first_task_seconds=10.0), "process_seconds": 25.0,
                                "cpu_seconds": 12.0},
              "dag_incremental": {**_rec(9.0), "process_seconds": 9.5}}  # fmt: skip
    rows = {r["name"]: r for r in md.ratios(stages)}
    day = rows["incremental day as one `rapport run` / first `rapport run` (whole processes)"]
    assert day["ratio"] == pytest.approx(0.095) and day["met"] is True  # whole processes: 9.5 s / 100 s
    nothing_new = rows["`rapport run` with nothing new / first run (whole process)"]
    assert nothing_new["ratio"] == pytest.approx(0.25) and nothing_new["met"] is False  # "under 25%" is strict
    cpu = rows["the same in CPU time (what waiting for a core on a shared machine leaves out)"]
    assert cpu["ratio"] == pytest.approx(0.15) and cpu["met"] is True
    first = rows["time to first task, first run (process start to start_run's code)"]
    again = rows["time to first task, run with nothing new (process start to start_run's code)"]
    assert (first["num"], first["met"], again["num"], again["met"]) == (8.5, True, 10.0, False)
    section = md.render_section(
        {
            "meta": {
                "size": "demo",
                "people": 3000,
                "started": "s",
                "finished": "f",
                "memory_limit": "4GB",
                "load_start": [1, 1, 1],
                "load_end": [1, 1, 1],
                "groups": ["dag"],
                "seed": 7,
                "end": "2026-06-30",
            },
            "stages": stages,
        }
    )
    assert "| time to first task, first run (process start to start_run's code) | 8.5 s |  |  | < 10 s | yes |" in (
        section
    )


def test_missing_or_failed_stages_leave_their_ratios_unmeasured():
    md = _load("results_md")
    stages = {"extract_orders": _rec(10.0), "floor_orders": {"error": "exit 1: boom"}}
    rows = {r["name"]: r for r in md.ratios(stages)}
    assert rows["extract orders / floor"]["ratio"] is None and rows["extract orders / floor"]["met"] is None
    assert rows["extract all three / floors"]["ratio"] is None


def test_a_size_section_is_replaced_and_everything_else_kept(tmp_path):
    md = _load("results_md")
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\nintro\n")
    md.update_results(path, "small", "<!-- bench/run.py size=small -->\nfirst\n<!-- /bench/run.py size=small -->\n")
    md.update_results(path, "medium", "<!-- bench/run.py size=medium -->\nmed\n<!-- /bench/run.py size=medium -->\n")
    md.update_results(path, "small", "<!-- bench/run.py size=small -->\nsecond\n<!-- /bench/run.py size=small -->\n")
    text = path.read_text()
    assert text.startswith("# Benchmark results\n\nintro\n")
    assert text.count(md.HEADING) == 1 and "first" not in text and text.count("second") == 1 and "med\n" in text
    assert text.index("second") < text.index("med\n")  # a replaced section keeps its place


def test_floor_comparison_finds_a_changed_value_and_a_missing_row(tmp_path):
    floors = _load("floors")
    marts = tmp_path / "dbt_built.duckdb"  # not named after a schema in it (pitfalls.md)
    with duckdb.connect(str(marts)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.customers as select * from (values ('a', 1.0::double, 'x'), "
            "('b', 2.0::double, 'y')) t(customer_id, revenue, status)"
        )
        con.execute(
            "create table marts.campaign_performance as select * from (values ('k1', 0.5::double)) "
            "t(campaign_id, open_rate)"
        )
    con = duckdb.connect()
    con.execute("create schema floor")
    # customers: b's revenue differs beyond 1e-9 relative, and a row c that dbt does not have
    con.execute(
        "create table floor.customers as select * from (values ('a', 1.0::double, 'x'), "
        "('b', 2.001::double, 'y'), ('c', 3.0::double, 'z')) t(customer_id, revenue, status)"
    )
    # campaign_performance: equal up to floating-point noise (summation order)
    con.execute(
        "create table floor.campaign_performance as select * from (values ('k1', 0.5::double + 1e-15)) "
        "t(campaign_id, open_rate)"
    )
    res = floors.compare(con, marts)
    assert res["customers"] == {
        "rows_floor": 3,
        "rows_dbt": 2,
        "unmatched_keys": 1,
        "differing_rows": 1,
        "differing_columns": ["revenue"],
        "identical": False,
    }
    assert res["campaign_performance"]["identical"] is True


def test_a_second_incremental_day_gets_its_own_rows_sum_and_ratio():
    md = _load("results_md")
    stages = {k: _rec(10.0) for k in PIPELINE}  # full run: 110 s
    stages |= {f"inc_{k}": _rec(2.0) for k in PIPELINE}  # first day: 22 s, 0.20
    stages |= {f"inc2_{k}": _rec(0.5) for k in PIPELINE}  # the day after: 5.5 s, 0.05
    stages["mutate2"] = _rec(3.0)
    stages["inc2_extract_esp"] = _rec(0.5, read=7, landed=5, quarantined=1, duplicate=1, tables={})
    rows = {r["name"]: r for r in md.ratios(stages)}
    first = rows["incremental day (1% new + 1% changed) / full run"]
    second = rows["incremental day 2 (the day after day 1) (1% new + 1% changed) / full run"]
    assert first["ratio"] == pytest.approx(0.20) and first["met"] is False
    assert second["ratio"] == pytest.approx(0.05) and second["met"] is True
    out = {
        "meta": {"size": "tiny", "people": 300, "groups": ["pipeline", "incremental"], "started": "s", "finished": "f"}
        | {"memory_limit": "4GB", "load_start": [1, 1, 1], "load_end": [1, 1, 1], "days": 2},
        "stages": stages,
    }
    text = md.render_section(out)
    assert "--stages pipeline,incremental --days 2`." in text
    assert "| **sum of the incremental stages** | **22.0** |" in text
    assert "| **sum of the incremental day 2 stages** | **5.5** |" in text
    assert "| incremental day 2: extract ESP (files) | 0.5 | 100 | read 7, landed 5, quarantined 1," in text
    assert "| incremental day 2: add 1% new + 1% changed records (not timed as pipeline) | 3.0 |" in text
    # day 2's rows come after day 1's
    assert text.index("incremental: finish run") < text.index("incremental day 2: start run")
