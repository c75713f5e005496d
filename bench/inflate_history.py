"""Give a warehouse the history of `--runs` more past daily runs, synthetically, to measure what day N+1 costs
after a year of runs (issue 16) without running 365 days.

The newest pipeline run is copied `--runs` times under new run ids, each copy dated k days earlier:

- Airflow's metadata DB (`airflow/airflow.db`): its dag runs of both DAGs with their task instances, XComs,
  rendered fields, task history, audit log rows and asset events;
- `ops.runs`, `ops.check_results`, `ops.extraction_log`, `ops.extract_state_history`, `ops.prediction_fits`
  rows of that run;
- per-run files: the newest `logs/run-*.log`, `runs/<run>.json` and the report of the as-of date
  (`reports/rapport_report_<date>.*`); Great Expectations' stored validation results and their Data Docs
  pages up to the 29 earlier runs a steady state holds (expectations/gx_runner.py prunes the rest).

What a real year adds that this does not: the data itself (raw, quarantine and mart rows, ESP files) and
the working DuckDB file's growth from rewriting tables; measure those with real runs (bench/history_growth.py).

    .venv/bin/python bench/inflate_history.py --warehouse /tmp/histgrow-x/wh --runs 365
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

DAY = timedelta(days=1)


def _shift(value: object, days: int) -> object:
    """A timestamp column's value `days` earlier (SQLite holds them as text)."""
    if value is None:
        return None
    text = str(value)
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return (datetime.strptime(text[:26], fmt) - days * DAY).strftime(fmt)
        except ValueError:
            continue
    return value


def _rows(con: sqlite3.Connection, sql: str, args: tuple = ()) -> list[dict]:
    cur = con.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _insert(con: sqlite3.Connection, table: str, row: dict) -> int:
    cols = ", ".join(f'"{c}"' for c in row)
    cur = con.execute(f'insert into "{table}" ({cols}) values ({", ".join("?" * len(row))})', list(row.values()))
    return cur.lastrowid


def inflate_metadata(db: Path, runs: int) -> dict[str, str]:
    """Copy the newest dag run of each DAG `runs` times; returns {dag_id: copied run_id}."""
    con = sqlite3.connect(db)
    con.execute("pragma foreign_keys = off")
    newest = {
        r["dag_id"]: r
        for r in _rows(con, "select * from dag_run where id in (select max(id) from dag_run group by dag_id)")
    }
    stamps = {
        "dag_run": ("queued_at", "logical_date", "start_date", "end_date", "data_interval_start",
                    "data_interval_end", "run_after", "last_scheduling_decision", "created_at", "updated_at"),
        "task_instance": ("start_date", "end_date", "queued_dttm", "scheduled_dttm", "last_heartbeat_at", "updated_at"),
        "task_instance_history": ("start_date", "end_date", "queued_dttm", "scheduled_dttm", "updated_at"),
        "xcom": ("timestamp",),
        "log": ("dttm", "logical_date"),
        "asset_event": ("timestamp",),
        "rendered_task_instance_fields": (),
    }  # fmt: skip
    for dag_id, run in newest.items():
        per_run = {
            t: _rows(con, f'select * from "{t}" where dag_id = ? and run_id = ?', (dag_id, run["run_id"]))
            for t in ("task_instance", "task_instance_history", "xcom", "log", "rendered_task_instance_fields")
        }
        events = _rows(
            con, "select * from asset_event where source_dag_id = ? and source_run_id = ?", (dag_id, run["run_id"])
        )
        consumed = _rows(con, "select * from dagrun_asset_event where dag_run_id = ?", (run["id"],))
        for k in range(runs, 0, -1):  # oldest first: ids grow with time, as Airflow's do
            run_id = f"{run['run_id']}~past{k:03d}"
            copy = {c: (_shift(v, k) if c in stamps["dag_run"] else v) for c, v in run.items() if c != "id"}
            new_id = _insert(con, "dag_run", {**copy, "run_id": run_id})
            for table, rows in per_run.items():
                for row in rows:
                    new = {c: (_shift(v, k) if c in stamps[table] else v) for c, v in row.items()}
                    new["run_id"] = run_id
                    if table == "task_instance":
                        new["id"] = uuid.uuid4().hex
                    if table == "task_instance_history":
                        new["task_instance_id"] = uuid.uuid4().hex
                    if table == "xcom":
                        new["dag_run_id"] = new_id
                    if table == "log":
                        new.pop("id")
                    _insert(con, table, new)
            for event in events:
                new = {c: (_shift(v, k) if c == "timestamp" else v) for c, v in event.items() if c != "id"}
                _insert(con, "asset_event", {**new, "source_run_id": run_id})
            for link in consumed:
                _insert(con, "dagrun_asset_event", {"dag_run_id": new_id, "event_id": link["event_id"]})
    con.commit()
    con.close()
    return {d: r["run_id"] for d, r in newest.items()}


def inflate_ops(work_db: Path, runs: int) -> str:
    """Copy the newest run's rows of the per-run ops tables `runs` times; returns that run's id."""
    con = duckdb.connect(str(work_db))
    try:
        (run_id,) = con.execute("select run_id from ops.runs order by started_at desc limit 1").fetchall()[0]
        con.execute("create temp table past as select range as k from range(1, ?)", [runs + 1])
        tables = {  # table -> its timestamp columns
            "ops.runs": ("started_at", "finished_at", "data_interval_start", "data_interval_end"),
            "ops.check_results": ("checked_at",),
            "ops.extraction_log": ("started_at",),
            "ops.extract_state_history": ("changed_at",),
            "ops.prediction_fits": (),
        }
        for table, stamps in tables.items():
            cols = [r[0] for r in con.execute(f"select column_name from (describe {table})").fetchall()]
            exprs = []
            for c in cols:
                if c == "run_id":
                    exprs.append("run_id || '~past' || lpad(k::varchar, 3, '0') as run_id")
                elif c in stamps:
                    exprs.append(f"{c} - to_days(k::int) as {c}")
                elif c == "as_of_date":
                    exprs.append("as_of_date - k::int as as_of_date")
                else:
                    exprs.append(f'"{c}"')
            con.execute(f"insert into {table} select {', '.join(exprs)} from {table}, past where run_id = ?", [run_id])
        return run_id
    finally:
        con.close()


def inflate_files(wh: Path, run_id: str, runs: int) -> None:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in run_id)
    logs = sorted((wh / "logs").glob("run-*.log"))
    marker = wh / "runs" / f"{safe}.json"
    reports = sorted((wh / "reports").glob("rapport_report_*.html"))
    last_day = date.fromisoformat(reports[-1].stem.removeprefix("rapport_report_")) if reports else None
    for k in range(1, runs + 1):
        if logs:
            stamp = datetime.strptime(logs[0].stem.removeprefix("run-"), "%Y%m%dT%H%M%S") - k * DAY
            target = logs[0].with_name(f"run-{stamp:%Y%m%dT%H%M%S}.log")
            if not target.exists():
                shutil.copy2(logs[-1], target)
        if marker.exists():
            shutil.copy2(marker, marker.with_name(f"{safe}~past{k:03d}.json"))
        if last_day:
            for suffix in (".html", ".pdf"):
                source = reports[-1].with_suffix(suffix)
                target = wh / "reports" / f"rapport_report_{last_day - (k + len(reports)) * DAY}{suffix}"
                if source.exists() and not target.exists():
                    shutil.copy2(source, target)
    # Great Expectations: the newest validation of each suite, under older run names and times; at most as
    # many as a steady state holds (gx_runner keeps the newest 30 per suite, this run's included)
    for base in (wh / "gx" / "uncommitted" / "validations", wh / "data_docs" / "validations"):
        for suite in (p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
            times = sorted((t for r in suite.iterdir() for t in r.iterdir()), key=lambda p: p.name)
            if not times:
                continue
            newest = times[-1]
            when = datetime.strptime(newest.name[:15], "%Y%m%dT%H%M%S")
            for k in range(1, min(runs, 29) + 1):
                target = suite / f"{newest.parent.name}~past{k:03d}" / f"{when - k * DAY:%Y%m%dT%H%M%S}.000000Z"
                if not target.exists():
                    shutil.copytree(newest, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--skip", nargs="*", default=[], choices=["metadata", "ops", "files"])
    args = parser.parse_args(argv)
    wh = args.warehouse.resolve()
    run_id = None
    if "ops" not in args.skip:
        run_id = inflate_ops(wh / "work" / "rapport_work.duckdb", args.runs)
    if "metadata" not in args.skip:
        inflate_metadata(wh / "airflow" / "airflow.db", args.runs)
    if "files" not in args.skip and run_id:
        inflate_files(wh, run_id, args.runs)
    print(f"{wh}: {args.runs} past runs added after the history of run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
