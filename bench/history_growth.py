"""Consecutive daily `rapport run`s on a demo warehouse, measuring what grows with the number of past runs
(issue 16): per run the CPU seconds of the run's process, each Airflow task's duration, the disk used and
files held per warehouse folder, the Airflow metadata DB's rows per table and the `ops.*` rows per table.

    RAPPORT_WAREHOUSE_DIR=/tmp/histgrow-x/wh DO_NOT_TRACK=1 \\
        .venv/bin/rapport demo --people 100 --months 2 --end 2026-11-01 --interval-end 2026-11-02T00:00:00
    .venv/bin/python bench/history_growth.py --warehouse /tmp/histgrow-x/wh --first-end 2026-11-01 \\
        --days 25 --out /tmp/histgrow-x/growth.jsonl

Day i continues the demo's sources to `first_end + i` (rapport.demo.prepare: new customers, orders, tickets,
events of that day; not timed) and then runs `rapport run --interval-end <first_end + i + 1>T00:00`
timed with /usr/bin/time. One JSON line per day goes to `--out`.

`--trial` instead runs one day on a scratch copy of the warehouse (deleted afterwards), so that warehouses of
different histories (bench/inflate_history.py) and settings can be compared in alternation, pair after pair:

    .venv/bin/python bench/history_growth.py --warehouse /tmp/histgrow-x/year --first-end 2026-11-01 \
        --trial --label year-keep0 --env RAPPORT_KEEP_RUNS=0 --out /tmp/histgrow-x/trials.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def folder_usage(warehouse: Path) -> dict[str, dict[str, int]]:
    """Bytes and files under each top-level folder of the warehouse (and under each of work/'s files)."""
    usage: dict[str, dict[str, int]] = {}
    for top in sorted(p for p in warehouse.iterdir()):
        paths = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        usage[top.name] = {
            "bytes": sum(p.stat().st_size for p in paths if p.exists()),
            "files": len(paths),
        }
    return usage


def validations_per_suite(warehouse: Path) -> dict[str, int]:
    """The most stored validation runs of any suite, in GX's store and in Data Docs (gx_runner keeps 30)."""
    out = {}
    for name, base in (
        ("gx", warehouse / "gx" / "uncommitted" / "validations"),
        ("data_docs", warehouse / "data_docs" / "validations"),
    ):
        suites = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
        out[name] = max((sum(1 for r in s.iterdir() for _ in r.iterdir()) for s in suites), default=0)
    index = warehouse / "data_docs" / "index.html"
    out["index_links"] = index.read_text().count("validations/") if index.exists() else 0
    return out


def metadata_rows(db: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table' order by name")]
        return {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def task_durations(db: Path) -> dict[str, float]:
    """Duration of each task of the newest run of each rapport DAG (Airflow's own figure)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            """select ti.dag_id, ti.task_id, ti.duration from task_instance as ti
               join (select dag_id, max(id) as id from dag_run group by dag_id) as newest
                 on newest.dag_id = ti.dag_id
               join dag_run as dr on dr.id = newest.id and dr.run_id = ti.run_id"""
        ).fetchall()
        return {f"{d}.{t}": round(s or 0.0, 3) for d, t, s in rows}
    finally:
        con.close()


def ops_rows(work_db: Path) -> dict[str, int]:
    con = duckdb.connect(str(work_db), read_only=True)
    try:
        found = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('ops', 'quarantine') and table_type = 'BASE TABLE'"
        ).fetchall()
        return {f"{s}.{t}": con.execute(f'select count(*) from {s}."{t}"').fetchall()[0][0] for s, t in found}
    finally:
        con.close()


def run_day(warehouse: Path, day_end: date, env: dict[str, str]) -> dict[str, Any]:
    from rapport.demo.prepare import prepare_demo

    prepare_demo(warehouse / "demo", end=day_end, work_db=warehouse / "work" / "rapport_work.duckdb")
    interval_end = f"{day_end + timedelta(days=1)}T00:00:00"
    timing = warehouse.parent / "time.txt"
    t0 = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %e %M", "-o", str(timing), str(ROOT / ".venv/bin/rapport"), "run",
         "--interval-end", interval_end],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.monotonic() - t0
    user, system, elapsed, rss = timing.read_text().split()[-4:]
    return {
        "day_end": str(day_end),
        "rc": proc.returncode,
        "cpu_s": round(float(user) + float(system), 2),
        "wall_s": round(wall, 2),
        "max_rss_kb": int(rss),
        "load": os.getloadavg()[0],
        "tail": proc.stdout.strip().splitlines()[-1:] if proc.returncode else [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--first-end", type=date.fromisoformat, required=True, help="the demo's first --end")
    parser.add_argument("--start-day", type=int, default=1, help="first day number to run (1: first_end + 1)")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--trial", action="store_true", help="run day --start-day once on a scratch copy")
    parser.add_argument("--label", default="", help="a name for the trial's record")
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings for the run")
    args = parser.parse_args(argv)
    warehouse = args.warehouse.resolve()
    if args.trial:
        scratch = warehouse.parent / f"trial-{os.getpid()}" / "wh"
        shutil.copytree(warehouse, scratch, symlinks=True)
        try:
            return _days(args, scratch, 1, {"label": args.label, "env": args.env})
        finally:
            shutil.rmtree(scratch.parent, ignore_errors=True)
    return _days(args, warehouse, args.days, {})


def _days(args: argparse.Namespace, warehouse: Path, days: int, extra: dict[str, Any]) -> int:
    env = {**os.environ, "RAPPORT_WAREHOUSE_DIR": str(warehouse), "DO_NOT_TRACK": "1"}
    for var in ("RAPPORT_ORDERS_DB_URL", "RAPPORT_HELPDESK_URL", "RAPPORT_HELPDESK_TOKEN", "RAPPORT_ESP_ROOT"):
        env.pop(var, None)
    env.update(dict(item.split("=", 1) for item in getattr(args, "env", [])))
    with open(args.out, "a") as out:
        for i in range(args.start_day, args.start_day + days):
            record = {"day": i, **extra, **run_day(warehouse, args.first_end + timedelta(days=i), env)}
            airflow_db = warehouse / "airflow" / "airflow.db"
            record["tasks"] = task_durations(airflow_db)
            record["metadata_rows"] = metadata_rows(airflow_db)
            record["ops_rows"] = ops_rows(warehouse / "work" / "rapport_work.duckdb")
            record["usage"] = folder_usage(warehouse)
            record["validations"] = validations_per_suite(warehouse)
            out.write(json.dumps(record) + "\n")
            out.flush()
            print(f"day {i}: rc {record['rc']} cpu {record['cpu_s']} s wall {record['wall_s']} s", flush=True)
            if record["rc"]:
                print("\n".join(record["tail"]), file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
