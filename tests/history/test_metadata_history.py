"""The in-process runner's Airflow metadata DB keeps the records of the newest RAPPORT_KEEP_RUNS dag runs of
each DAG (rapport.orchestration.metadata_db.clean_metadata_history, with `airflow db clean`'s function).

In a child process (Airflow reads its configuration once per process) on a fresh SQLite metadata DB, with
hand-made dag runs: their logical dates (what dag.test() stores as start dates) lie months before the wall
clock times their tasks, XComs, audit log rows and asset events were written at, as for the demo or a
backfill. Slow: the migration creates the whole schema."""

from __future__ import annotations

import pytest
from demo_builds import python_json

pytestmark = pytest.mark.slow

DRIVER = """
import json
from rapport.core.config import load_settings
from rapport.orchestration.local_runner import configure_airflow

configure_airflow(load_settings())
from airflow import settings
from sqlalchemy import text
from rapport.orchestration import metadata_db

metadata_db.ensure_metadata_db()


def add_run(con, dag_id, n, day, hour, month=6):
    run_id = f"{dag_id}_{n}"
    wall = f"2026-12-01 {hour:02d}:00:00.000000"
    logical = f"2026-{month:02d}-{day:02d} 00:00:00.000000"
    run = con.execute(
        text("insert into dag_run (dag_id, run_id, run_type, run_after, logical_date, start_date, created_at, "
             "clear_number, span_status) values (:d, :r, 'manual', :l, :l, :l, :w, 0, 'not_started') returning id"),
        {"d": dag_id, "r": run_id, "l": logical, "w": wall}).scalar()
    for task in ("a", "b"):
        started = f"2026-12-01 {hour:02d}:0{1 if task == 'a' else 2}:00.000000"
        con.execute(text("insert into task_instance (id, task_id, dag_id, run_id, map_index, try_number, pool, "
                         "pool_slots, span_status, start_date, state) values (:id, :t, :d, :r, -1, 1, "
                         "'default_pool', 1, 'not_started', :s, 'success')"),
                    {"id": f"{run:04d}{task}".ljust(32, "0"), "t": task, "d": dag_id, "r": run_id, "s": started})
        con.execute(text("insert into xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, value, timestamp) "
                         "values (:i, :t, -1, 'return_value', :d, :r, '1', :s)"),
                    {"i": run, "t": task, "d": dag_id, "r": run_id, "s": started})
        con.execute(text("insert into log (dttm, dag_id, task_id, event, run_id) values (:s, :d, :t, 'success', :r)"),
                    {"s": started, "d": dag_id, "t": task, "r": run_id})
    con.execute(text("insert into asset_event (asset_id, extra, source_dag_id, source_run_id, timestamp) "
                     "values (1, '{}', :d, :r, :s)"), {"d": dag_id, "r": run_id, "s": f"2026-12-01 {hour:02d}:03:00"})


def counts(con):
    runs = sorted(r for (r,) in con.execute(text("select run_id from dag_run")))
    per = {t: con.execute(text(f"select count(*) from {t}")).scalar()
           for t in ("task_instance", "xcom", "log", "asset_event")}
    return {"runs": runs, **per}


with settings.engine.begin() as con:
    con.execute(text("insert into asset (id, name, uri, \\"group\\", extra, created_at, updated_at) values "
                     "(1, 'a', 'a', 'g', '{}', '2026-12-01', '2026-12-01')"))
    for n in range(1, 5):  # daily runs 1-4: logical dates June 1-4, written at hours 1-4 of Dec 1
        add_run(con, "rapport_daily", n, n, n)
out = {"four_kept": metadata_db.clean_metadata_history(3)}  # 4 runs: within keep (3) + a fifth (at least 1)
with settings.engine.begin() as con:
    out["after_four"] = counts(con)
    for n in (5, 6):
        add_run(con, "rapport_daily", n, n, n)
    add_run(con, "rapport_transform", 1, 5, 5)
    add_run(con, "rapport_transform", 2, 6, 6)
out["cleaned"] = metadata_db.clean_metadata_history(3)
with settings.engine.connect() as con:
    out["after"] = counts(con)
    archives = "select count(*) from sqlite_master where name like '_airflow_deleted%'"
    out["archives"] = con.execute(text(archives)).scalar()
out["everything_kept"] = metadata_db.clean_metadata_history(0)
with settings.engine.begin() as con:
    for n in (7, 8):
        add_run(con, "rapport_daily", n, n, n)
out["again"] = metadata_db.clean_metadata_history(3)
with settings.engine.begin() as con:
    out["after_again"] = counts(con)["runs"]
    for n, day in ((9, 1), (10, 2)):  # a backfill: made now, for logical dates before all the others
        add_run(con, "rapport_daily", n, day, n, month=5)
out["backfill"] = metadata_db.clean_metadata_history(3)
with settings.engine.connect() as con:
    out["after_backfill"] = counts(con)["runs"]
print(json.dumps(out))
"""


def test_the_records_of_all_but_the_newest_runs_are_deleted(tmp_path):
    out = python_json(DRIVER, tmp_path)
    four = [f"rapport_daily_{n}" for n in range(1, 5)]
    assert out["four_kept"] is False
    assert out["after_four"] == {"runs": four, "task_instance": 8, "xcom": 8, "log": 8, "asset_event": 4}
    assert out["cleaned"] is True
    # rapport_daily keeps its newest 3 (4, 5, 6), rapport_transform both of its 2; 2 tasks, XComs and log
    # rows per kept run, one asset event each
    kept = ["rapport_daily_4", "rapport_daily_5", "rapport_daily_6", "rapport_transform_1", "rapport_transform_2"]
    assert out["after"] == {"runs": kept, "task_instance": 10, "xcom": 10, "log": 10, "asset_event": 5}
    assert out["archives"] == 0
    assert out["everything_kept"] is False
    # two more daily runs: the newest 3 of rapport_daily (6-8) and the 2 of rapport_transform (June 5 and 6)
    # are kept, and what started before the oldest of them (June 5): daily run 4 goes
    assert out["again"] is True
    assert out["after_again"] == sorted(["rapport_daily_5", "rapport_daily_6", "rapport_daily_7", "rapport_daily_8",
                                         "rapport_transform_1", "rapport_transform_2"])  # fmt: skip
    # a backfill's runs (made last, for May 1 and 2) are the newest: no run started before them, none goes
    assert out["backfill"] is False
    assert len(out["after_backfill"]) == 8
