"""The dbt build on DuckDB and on Spark side by side, on the same landed data (issue 19).

    .venv/bin/python bench/engines.py --people 100000 [--workdir DIR] [--spark-master 'local[2]']

1. generate the demo sources (`rapport generate`), unless the work directory already holds them;
2. `rapport run` on DuckDB lands them (extraction, raw checks; it also builds and publishes once);
3. the landed working file is copied twice, its model schemas dropped, so each engine makes a first build;
4. `dbt build` of the whole project on each copy, each in its own process, DuckDB first, then Spark
   (RAPPORT_ENGINE=spark: session start, raw tables and state into Spark, build, tables back);
5. the marts of the two builds are compared (the same rows, bar run-time columns).

Prints a markdown section for bench/RESULTS.md. Wall times, and the peak RSS of the largest process (for
Spark, the JVM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psutil

ROOT = Path(__file__).resolve().parents[1]
SEED, END, INTERVAL_END = "7", "2026-06-30", "2026-07-01T00:00:00"
RUN_TIME_COLUMNS = {"first_assigned_at", "last_assigned_at", "retired_at", "recorded_at",
                    "first_assigned_run_id", "last_assigned_run_id", "run_id"}  # fmt: skip

BUILD = """
import json, logging, sys, time
from datetime import date
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
from rapport.core.config import load_settings
from rapport.transform.runner import dbt_build
t = time.monotonic()
dbt_build(load_settings(), run_id="bench-engines", as_of=date.fromisoformat(sys.argv[1]))
print(json.dumps({"seconds": time.monotonic() - t}))
"""


def _env(warehouse: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW"))}
    return {**env, "RAPPORT_WAREHOUSE_DIR": str(warehouse), "DO_NOT_TRACK": "1", **extra}


def _timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run a command; (wall seconds, peak RSS MB of its process tree, polled). Its output goes to `log`."""
    started, peak = time.monotonic(), 0
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            time.sleep(0.5)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed, see {log}")
    return seconds, peak / 2**20


def _fresh_copy(landed: Path, warehouse: Path) -> None:
    shutil.rmtree(warehouse, ignore_errors=True)
    (warehouse / "work").mkdir(parents=True)
    shutil.copy(landed / "work" / "rapport_work.duckdb", warehouse / "work" / "rapport_work.duckdb")
    with duckdb.connect(str(warehouse / "work" / "rapport_work.duckdb")) as con:
        for schema in ("staging", "intermediate", "marts"):
            con.execute(f"drop schema if exists {schema} cascade")


def _phases(log: Path) -> dict[str, str]:
    found = {}
    for line in log.read_text(errors="replace").splitlines():
        if "spark:" in line and " in " in line:
            found["load" if "loaded" in line else "collect"] = line.rsplit(" in ", 1)[1].strip()
    return found


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _compare(a: Path, b: Path) -> str:
    """The marts of two working files: equal rows (run-time columns aside, floats to 1e-9 relative)?"""
    with duckdb.connect(str(a), read_only=True) as x, duckdb.connect(str(b), read_only=True) as y:
        tables = [
            r[0]
            for r in x.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        differing = []
        for table in tables:
            cols = [
                r[0]
                for r in x.execute(
                    "select column_name from information_schema.columns where table_schema = 'marts' "
                    "and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
                if r[0] not in RUN_TIME_COLUMNS
            ]
            q = f"select {', '.join(chr(34) + c + chr(34) for c in cols)} from marts.{table}"
            rows_x, rows_y = (sorted(con.execute(q).fetchall(), key=_key) for con in (x, y))
            if len(rows_x) != len(rows_y) or not all(
                _same(u, v) for r, s in zip(rows_x, rows_y, strict=True) for u, v in zip(r, s, strict=True)
            ):
                differing.append(table)
    verdict = "every mart equal (floats to 1e-9 relative)"
    return verdict if not differing else f"differ: {', '.join(differing)}"


def _key(row: tuple) -> tuple:
    # floats rounded for ordering only; equality is checked with the tolerance
    return tuple((0, "") if v is None else (1, repr(round(v, 6) if isinstance(v, float) else v)) for v in row)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/rapport-bench-engines"))
    ap.add_argument("--spark-master", default="local[2]")
    args = ap.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    landed, on_duckdb, on_spark = work / "landed", work / "duckdb", work / "spark"
    rapport = [sys.executable, "-m", "rapport.cli"]
    times: dict[str, tuple[float, float]] = {}
    if not (landed / "demo").exists():
        times["generate"] = _timed([*rapport, "generate", "--people", str(args.people), "--seed", SEED,
                                    "--end", END], _env(landed), work / "generate.log")  # fmt: skip
    if not (landed / "published" / "rapport.duckdb").exists():
        times["land"] = _timed([*rapport, "run", "--interval-end", INTERVAL_END], _env(landed), work / "land.log")
    with duckdb.connect(str(landed / "work" / "rapport_work.duckdb"), read_only=True) as con:
        raw_rows = sum(
            con.execute(f"select count(*) from raw.{t}").fetchone()[0]
            for (t,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        )
        records = con.execute("select count(*) from intermediate.int_identity_records_unioned").fetchone()[0]
    as_of = END
    for name, warehouse, extra in (("duckdb", on_duckdb, {}),
                                   ("spark", on_spark, {"RAPPORT_ENGINE": "spark",
                                                        "RAPPORT_SPARK_MASTER": args.spark_master})):  # fmt: skip
        _fresh_copy(landed, warehouse)
        times[name] = _timed([sys.executable, "-c", BUILD, as_of], _env(warehouse, **extra), work / f"{name}.log")
    # the published-file shape is not needed here: compare the working files' marts
    verdict = _compare(on_duckdb / "work" / "rapport_work.duckdb", on_spark / "work" / "rapport_work.duckdb")
    phases = _phases(work / "spark.log")
    load = os.getloadavg()
    versions = {m: __import__(m).__version__ for m in ("duckdb", "pyspark")}
    print(json.dumps({k: [round(v, 1) for v in t] for k, t in times.items()}))
    print(f"""
## dbt build on DuckDB and on Spark: {args.people:,} people

Run {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores ({platform.processor() or platform.machine()}), \
{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30:.0f} GB RAM; duckdb {versions["duckdb"]}, \
pyspark {versions["pyspark"]} (master {args.spark_master}, driver memory 4g, dbt-spark session method, 4 dbt threads). \
Load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. Command: \
`.venv/bin/python bench/engines.py --people {args.people}`. The same landed data ({raw_rows:,} raw rows, \
{records:,} identity records), a first build of the whole project (models and tests) on each engine, each in \
its own process.

| engine | dbt build, s | peak RSS, MB | notes |
|---|---:|---:|---|
| DuckDB | {times["duckdb"][0]:.0f} | {times["duckdb"][1]:,.0f} | |
| Spark | {times["spark"][0]:.0f} | {times["spark"][1]:,.0f} | of which load {phases.get("load", "?")} \
(session start, raw tables and state to Parquet and into Spark), collect {phases.get("collect", "?")} |

Marts of the two builds: {verdict}.
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
