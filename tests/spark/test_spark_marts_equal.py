"""A run's result does not depend on the engine (marts.md): the same demo sources, run with `rapport run` once
with RAPPORT_ENGINE=duckdb and once with RAPPORT_ENGINE=spark (a local Spark session, the real DAG with its
spark_load / dbt layer / spark_collect tasks), publish the same marts, row for row, with the same columns and
types. The Spark build includes the dbt test assert_engine_sql_semantics (the silent differences), so the
Spark run passing means it passed there too.

Then a second build on Spark of the two models whose tables are state (stable customer ids, segment history)
checks that Spark continues from the state the working file holds; it also builds two incremental staging
models (orders: insert_overwrite of the touched key buckets; events: append) after a new order version and a
late ESP event land, and they must read only those rows and give what a full build would.

Costs about 9 minutes on 2 cores, most of it the Spark run (one JVM, about 250 dbt nodes at ~1 s each; the
DuckDB run goes on beside it) and 1.5 minutes the second build (another JVM); the sources are 200 people so
that the data is never what takes the time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pytest

from rapport.transform.spark import java_available

pytestmark = [pytest.mark.slow, pytest.mark.spark]

RAPPORT = [sys.executable, "-m", "rapport.cli"]
ENGINES = ("duckdb", "spark")
PEOPLE, SEED, END, INTERVAL_END = "200", "23", "2026-10-31", "2026-11-01T00:00:00"
# When the build ran, not what it computed: dbt's run start time and the run id, per row.
RUN_TIME_COLUMNS = {
    "first_assigned_at", "last_assigned_at", "retired_at", "recorded_at",
    "first_assigned_run_id", "last_assigned_run_id", "run_id",
}  # fmt: skip
REL_TOL = 1e-9


def _rapport(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(RAPPORT + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, what: str, warehouse: Path) -> None:
    try:
        out, _ = proc.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        # a run over time is stopped with its JVM and Python workers: left running, they hold both cores
        # for the rest of the suite
        _kill(proc)
        out, _ = proc.communicate()
        pytest.fail(f"{what}: over 1800 s: {out[-6000:]}{_log_tail(warehouse)}")
    assert proc.returncode == 0, f"{what}: {out[-6000:]}{_log_tail(warehouse)}"


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    proc.kill()


def _log_tail(warehouse: Path) -> str:
    logs = sorted((warehouse / "logs").glob("run-*.log"))
    return logs[-1].read_text(errors="replace")[-8000:] if logs else ""


def _query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse / "work" / "rapport_work.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


# A second build on Spark, in its own process (its own JVM), of the models whose tables are state.
REBUILD = """
import sys
from datetime import date
from rapport.core.config import load_settings
from rapport.transform.runner import dbt_build
INCREMENTAL = sys.argv[2].split(",")
dbt_build(load_settings(), run_id="rebuild", as_of=date.fromisoformat(sys.argv[1]),
          select=["int_customer_ids_assigned", "segment_history_dates", "segment_history", *INCREMENTAL],
          extra_args=["--indirect-selection", "cautious"])
"""
INCREMENTAL = ["stg_shop__orders", "stg_esp__events"]
# new raw rows before the second build: a status change of the first order and a late copy of the first event
LANDED = [
    """insert into raw.shop_orders select * replace ('refunded' as status, updated_at + interval 1 day as updated_at,
       'rebuild' as _run_id, now()::timestamp as _extracted_at) from raw.shop_orders
       where id = (select min(id) from raw.shop_orders) qualify row_number() over (order by updated_at desc) = 1""",
    """insert into raw.esp_events select * replace ('late-' || sg_event_id as sg_event_id, 'rebuild' as _run_id,
       now()::timestamp as _extracted_at) from raw.esp_events qualify row_number() over (order by sg_event_id) = 1""",
]
KEPT_STATE = ["intermediate.segment_history__state", "intermediate.segment_history__state_dates"]
IDS = "select record_id, customer_id, is_current, first_assigned_run_id from intermediate.int_customer_ids_assigned"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Any]:
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("no spark extra (bash scripts/bootstrap.sh test installs requirements-spark.lock)")
    if not java_available():
        pytest.skip("no Java 17 (bash scripts/install_java.sh installs it)")
    base = tmp_path_factory.mktemp("engines")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "AIRFLOW", "PYSPARK", "SPARK"))}
    warehouses = {engine: base / engine for engine in ENGINES}
    generate = _rapport(["generate", "--people", PEOPLE, "--seed", SEED, "--end", END],
                        {**env, "RAPPORT_WAREHOUSE_DIR": str(warehouses["duckdb"])})  # fmt: skip
    _finish(generate, "rapport generate", warehouses["duckdb"])
    shutil.copytree(warehouses["duckdb"] / "demo", warehouses["spark"] / "demo")  # the same sources, byte for byte
    # both runs at once: the Spark run mostly waits on the JVM, the DuckDB run fills the gaps
    started = time.monotonic()
    procs = {
        engine: _rapport(["run", "--interval-end", INTERVAL_END],
                         {**env, "RAPPORT_WAREHOUSE_DIR": str(warehouse), "RAPPORT_ENGINE": engine})
        for engine, warehouse in warehouses.items()
    }  # fmt: skip
    try:
        for engine, proc in procs.items():
            _finish(proc, f"rapport run on {engine}", warehouses[engine])
    finally:  # one run failed: the other is not waited for, nor left running
        for proc in procs.values():
            if proc.poll() is None:
                _kill(proc)
    print(f"rapport run on both engines: {time.monotonic() - started:.0f} s")
    spark = warehouses["spark"]
    [(as_of,)] = _query(spark, "select max(as_of_date) from ops.runs")
    ids_before = sorted(_query(spark, IDS))
    # an older as-of date's history that only the working file holds: it reaches the second build's result
    # only if the changed table went to Spark (the ids, unchanged, need not)
    with duckdb.connect(str(spark / "work" / "rapport_work.duckdb")) as con:
        # one customer recorded on 2000-01-01 with the state they have on the run's date
        con.execute(
            "insert into marts.segment_history by name "
            "(select * replace (date '2000-01-01' as as_of_date) from marts.segment_history limit 1)"
        )
        con.execute(
            "insert into marts.segment_history_dates by name "
            "(select date '2000-01-01' as as_of_date, 'old' as run_id, 1 as customers)"
        )
        for sql in LANDED:
            con.execute(sql)
        # the state a DuckDB build keeps beside the history (registry copy and latest rows), as if the
        # engine had been DuckDB before: a collected Spark build must drop it (it describes the older log)
        for table in KEPT_STATE:
            con.execute(f"create table {table} as select * from marts.segment_history_dates")
    started = time.monotonic()
    rebuild = subprocess.Popen([sys.executable, "-c", REBUILD, str(as_of), ",".join(INCREMENTAL)], text=True,
                               env={**env, "RAPPORT_WAREHOUSE_DIR": str(spark), "RAPPORT_ENGINE": "spark"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    _finish(rebuild, "second build on Spark", spark)
    print(f"second build on Spark: {time.monotonic() - started:.0f} s")
    return {
        "published": {engine: warehouse / "published" / "rapport.duckdb" for engine, warehouse in warehouses.items()},
        "spark": spark,
        "as_of": as_of,
        "ids_before": ids_before,
    }


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns where table_schema = 'marts' "
        "order by table_name, ordinal_position"
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        tables.setdefault(table, []).append((column, dtype))
    return tables


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)
    return a == b


def _sort_key(row: tuple) -> tuple:
    # floats rounded for ordering only (equality is checked with the tolerance); None first
    return tuple((0, "") if v is None else (1, repr(round(v, 6) if isinstance(v, float) else v)) for v in row)


def test_both_engines_publish_the_same_marts(runs):
    published = runs["published"]
    with duckdb.connect(str(published["duckdb"]), read_only=True) as a, \
            duckdb.connect(str(published["spark"]), read_only=True) as b:  # fmt: skip
        tables_a, tables_b = _tables(a), _tables(b)
        assert sorted(tables_b) == sorted(tables_a)
        assert "customers" in tables_a and "campaign_performance" in tables_a
        problems = []
        for table, columns in sorted(tables_a.items()):
            if tables_b[table] != columns:
                problems.append(f"{table}: columns {columns} on duckdb, {tables_b[table]} on spark")
                continue
            names = [c for c, _ in columns if c not in RUN_TIME_COLUMNS]
            select = f"select {', '.join(chr(34) + n + chr(34) for n in names)} from marts.{table}"
            rows_a = sorted(a.execute(select).fetchall(), key=_sort_key)
            rows_b = sorted(b.execute(select).fetchall(), key=_sort_key)
            if len(rows_a) != len(rows_b):
                problems.append(f"{table}: {len(rows_a)} rows on duckdb, {len(rows_b)} on spark")
                continue
            for row_a, row_b in zip(rows_a, rows_b, strict=True):
                if not all(_same(x, y) for x, y in zip(row_a, row_b, strict=True)):
                    diff = {n: (x, y) for n, x, y in zip(names, row_a, row_b, strict=True) if not _same(x, y)}
                    problems.append(f"{table}: first differing row {diff}")
                    break
        assert not problems, "\n".join(problems)


def test_the_comparison_sees_real_content(runs):
    """Guards the test above against comparing empty marts: the demo's people, campaigns and segments are there."""
    with duckdb.connect(str(runs["published"]["spark"]), read_only=True) as con:
        customers = con.execute("select count(*), sum(lifetime_revenue_usd) from marts.customers").fetchone()
        campaigns = con.execute("select count(*), count(lift_abs) from marts.campaign_performance").fetchone()
        segments = con.execute("select count(distinct rfm_segment) from marts.customer_segments").fetchone()
    assert customers[0] > 100 and customers[1] > Decimal(0)
    assert campaigns[0] > 0 and campaigns[1] > 0
    assert segments[0] > 3


def test_a_second_spark_build_continues_from_the_state_in_the_working_file(runs):
    """The incremental models' state goes from the working file to Spark and back: a second build keeps every
    customer id and assignment (insert_overwrite of the is_current partitions), replaces the as-of date's
    segment history changes instead of adding to them (diffed against an earlier date's state that only the
    working file held), and keeps the history of other dates as the working file had it."""
    spark = runs["spark"]
    ids_after = sorted(_query(spark, IDS))
    assert ids_after == runs["ids_before"]
    assert len(ids_after) > 100
    [(stale,)] = _query(
        spark,
        "select count(*) from intermediate.int_customer_ids_assigned where is_current "
        "and last_assigned_run_id <> 'rebuild'",
    )
    assert stale == 0
    history = _query(
        spark,
        "select as_of_date, count(*), count(distinct customer_id), min(run_id), max(run_id), min(change), "
        "max(change) from marts.segment_history group by as_of_date order by as_of_date",
    )
    assert [(str(h[0]), h[1], h[2]) for h in history[:1]] == [("2000-01-01", 1, 1)]
    [(as_of, rows, customers, first_run, last_run, first_change, last_change)] = history[1:]
    assert as_of == runs["as_of"]
    # a change log: the customer recorded on 2000-01-01 is unchanged on the run's date, so has no row there
    [(snapshot,)] = _query(spark, "select count(*) from marts.customer_segments")
    assert rows == customers == snapshot - 1 > 100
    assert first_run == last_run == "rebuild" and first_change == last_change == "entered"
    dates = _query(spark, "select as_of_date, run_id, customers from marts.segment_history_dates order by 1")
    assert [(str(d), r, n) for d, r, n in dates] == [("2000-01-01", "old", 1), (str(as_of), "rebuild", snapshot)]


def test_the_incremental_staging_models_read_what_landed_on_spark(runs):
    """The second build was incremental on Spark (the ledger's plan) and its staging tables equal what a full
    build gives from raw: the changed order's latest status, the late event, no key lost or doubled."""
    spark = runs["spark"]
    [(reason, since)] = _query(spark, "select reason, since from ops.transform_increments where state = 'pending'")
    assert reason == "incremental" and since is not None
    [(status,)] = _query(spark, "select status from staging.stg_shop__orders "
                                "where order_id = (select min(id) from raw.shop_orders)")  # fmt: skip
    assert status == "refunded"
    counts = _query(spark, "select (select count(*) from staging.stg_shop__orders), "
                           "(select count(distinct id) from raw.shop_orders), "
                           "(select count(*) from staging.stg_esp__events), "
                           "(select count(distinct sg_event_id) from raw.esp_events), "
                           "(select count(*) from staging.stg_esp__events where _run_id = 'rebuild')")  # fmt: skip
    orders, raw_orders, events, raw_events, late = counts[0]
    assert (orders, events, late) == (raw_orders, raw_events, 1)


def test_the_spark_builds_leave_no_copy_of_the_previous_log(runs):
    """The second build's segment_history rewrote the log from a copy of the previous one
    (segment_history__previous) and dropped the copy once done: Spark's warehouse holds the log, not the copy."""
    tables = runs["spark"] / "spark" / "warehouse"
    assert [p.name for p in tables.glob("*.db/segment_history")] == ["segment_history"]
    assert list(tables.glob("*.db/segment_history__previous")) == []


def test_collecting_a_spark_build_drops_the_duckdb_only_history_state(runs):
    """The working file held a DuckDB build's state beside the history before the second build; collecting
    Spark's history dropped it (kept, its registry copy would make the next DuckDB build undo Spark's dates)."""
    names = ", ".join(f"'{t.split('.')[1]}'" for t in KEPT_STATE)
    kept = _query(runs["spark"], f"select count(*) from duckdb_tables() where table_name in ({names})")
    assert kept == [(0,)]
