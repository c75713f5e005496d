"""Blue/green publishing: complete, DuckDB-1.x readable, atomic, and a failure leaves the old file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.publishing.publish import publish


@pytest.fixture()
def settings(tmp_path):
    return load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})


def _working(settings, version: int) -> duckdb.DuckDBPyConnection:
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.work_db))
    for schema in ("marts", "quarantine", "ops", "staging"):
        con.execute(f"create schema if not exists {schema}")
    con.execute("create or replace table marts.customers as select * from range(?) t(n)", [version * 10])
    con.execute("create or replace view marts.customer_count as select count(*) as n from marts.customers")
    con.execute("create or replace table quarantine.esp_events_rejects (source varchar, reason varchar)")
    con.execute("insert into quarantine.esp_events_rejects values ('esp', 'truncated line')")
    con.execute("create or replace table staging.not_published as select 1 as x")
    con.execute(
        "create table if not exists ops.runs (run_id varchar, started_at timestamp, finished_at timestamp, "
        "status varchar)"
    )
    con.execute("insert into ops.runs values (?, now()::timestamp, null, 'running')", [f"run{version}"])
    return con


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_writes_marts_quarantine_and_runs_readable_by_duckdb_1x(settings):
    con = _working(settings, 1)
    result = publish(con, settings, run_id="run1")
    con.close()
    assert result.path == settings.published_db
    header = settings.published_db.read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    assert int.from_bytes(header[12:20], "little") <= 67  # v1.4.0 storage: DuckDB 1.x can open it
    pub = duckdb.connect(str(settings.published_db), read_only=True)
    assert pub.execute("select count(*) from marts.customers").fetchone() == (10,)
    assert pub.execute("select n from marts.customer_count").fetchone() == (10,)  # the view became a table
    assert pub.execute("select status from ops.runs where run_id = 'run1'").fetchone() == ("success",)
    assert pub.execute("select count(*) from quarantine.esp_events_rejects").fetchone() == (1,)
    schemas = {r[0] for r in pub.execute("select distinct table_schema from information_schema.tables").fetchall()}
    assert "staging" not in schemas
    pub.close()
    parquet = sorted(p.name for p in result.parquet_dir.glob("*.parquet"))
    assert parquet == [
        "marts.customer_count.parquet",
        "marts.customers.parquet",
        "ops.runs.parquet",
        "quarantine.esp_events_rejects.parquet",
    ]
    parquet_rows = duckdb.connect().execute(f"select count(*) from '{result.parquet_dir}/marts.customers.parquet'")
    assert parquet_rows.fetchone() == (10,)


def test_open_reader_keeps_its_snapshot_across_a_publish(settings):
    con = _working(settings, 1)
    publish(con, settings, run_id="run1")
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    con2 = _working_again(con, settings, 2)
    publish(con2, settings, run_id="run2")
    assert reader.execute("select count(*) from marts.customers").fetchone() == (10,)
    # A new reader is another process (as a BI tool is): DuckDB shares one instance per path per process.
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('select count(*) from marts.customers').fetchone()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(settings.published_db)], capture_output=True, text=True)
    assert out.stdout.strip() == "20", out.stderr
    reader.close()
    con.close()


def _working_again(con, settings, version):
    con.execute("create or replace table marts.customers as select * from range(?) t(n)", [version * 10])
    return con


def test_failed_publish_leaves_previous_file_byte_identical(settings):
    con = _working(settings, 1)
    publish(con, settings, run_id="run1")
    before = _sha(settings.published_db)
    # A mart that cannot be materialised (its view points at a table that is gone) fails the copy mid-way.
    con.execute("create or replace table marts.zz_base as select 1 as x")
    con.execute("create or replace view marts.zz_broken as select x from marts.zz_base")
    con.execute("drop table marts.zz_base")
    con.execute("create or replace table marts.customers as select * from range(99) t(n)")
    with pytest.raises(duckdb.Error):
        publish(con, settings, run_id="run2")
    con.close()
    assert _sha(settings.published_db) == before
    leftovers = [p.name for p in settings.published_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
