"""Disk full: a small tmpfs under the working database or under the published directory, filled up.

The run must fail saying so (no space, and where), the previously published file must stay byte-identical
and readable, no half-written or temp file may be left where BI tools look, and once space is back a rerun
must publish what a clean run publishes. Mounting needs root (or CAP_SYS_ADMIN): without it these tests
skip, loudly.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
from reliability_checks import (
    differences,
    fill_up,
    held_locks,
    published_fingerprints,
    raw_duplicates,
    raw_fingerprints,
    temp_files,
)
from reliability_runs import INTERVAL_END, clean_env, log_tail, run_to_end

from rapport.core.config import load_settings
from rapport.publishing.publish import PublishError, publish

RUN = ["run", "--interval-end", INTERVAL_END]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shas(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): _sha(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def _visible(directory: Path) -> list[str]:
    """What a BI tool or Parquet reader pointed at the directory would list (hidden files included)."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@pytest.mark.slow
def test_disk_full_under_the_working_db_fails_clearly_then_a_rerun_recovers(reference, tmp_path, tmpfs):
    wh = reference.new_warehouse(tmp_path, published=True)  # a previous run's published file is in place
    published = wh / "published" / "rapport.duckdb"
    before = _shas(wh / "published")
    work = tmpfs(wh / "work", 64 << 20)
    filler = fill_up(work, leave_bytes=512 << 10)
    env = clean_env(wh)

    failed = run_to_end(RUN, env)
    output = failed.stdout + failed.stderr
    assert failed.proc.returncode != 0, output
    assert "No space left on device" in output, output + log_tail(wh)
    assert str(work) in output  # which file system is full
    assert _shas(wh / "published") == before  # untouched, byte for byte
    assert differences(reference.published, published_fingerprints(published)) == {}  # and still opens
    assert temp_files(wh / "published") == []
    assert held_locks(wh) == []

    # Space is back: the rerun of the same interval picks up from whatever the failed run left.
    filler.unlink()
    rerun = run_to_end(RUN, env)
    assert rerun.proc.returncode == 0, rerun.stdout + log_tail(wh)
    work_db = wh / "work" / "rapport_work.duckdb"
    assert differences(reference.published, published_fingerprints(published)) == {}
    assert differences(reference.raw, raw_fingerprints(work_db)) == {}
    assert raw_duplicates(work_db) == {}


@pytest.mark.slow
def test_disk_full_under_the_published_dir_fails_clearly_and_keeps_the_previous_file(reference, tmp_path, tmpfs):
    # The reference's whole warehouse: its marts were built and checked from exactly these sources, so the
    # rerun of the same interval reuses them (rapport.pipeline.reuse) and goes straight to publish, the step
    # this test fills the disk for; publish writes a complete new file either way (~40 s less than building
    # the marts again first).
    wh = tmp_path / "warehouse"
    shutil.copytree(reference.warehouse, wh, ignore=shutil.ignore_patterns("published"))
    pub_dir = tmpfs(wh / "published", 32 << 20)
    for item in (reference.warehouse / "published").iterdir():  # a previous run's outputs
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, pub_dir / item.name)
    filler = fill_up(pub_dir, leave_bytes=256 << 10)
    before = _shas(pub_dir)

    failed = run_to_end(RUN, clean_env(wh))
    output = failed.stdout + failed.stderr
    assert failed.proc.returncode != 0, output
    assert failed.states().get("publish") == "failed", (failed.states(), output)
    assert "no space left on the device" in output.lower(), output + log_tail(wh)
    assert str(pub_dir) in output
    assert _shas(pub_dir) == before  # the published file, its Parquet files and the dbt docs: all untouched
    assert _visible(pub_dir) == sorted(before)  # and nothing new, not even a hidden temp file
    assert differences(reference.published, published_fingerprints(pub_dir / "rapport.duckdb")) == {}
    assert held_locks(wh) == []
    filler.unlink()


# --- publish() itself on a full disk (fast) ---------------------------------------------------------------


def _working(settings, rows: int) -> duckdb.DuckDBPyConnection:
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.work_db))
    for schema in ("marts", "quarantine", "ops"):
        con.execute(f"create schema if not exists {schema}")
    con.execute("create or replace table marts.customers as select range as n, 'x' || range as s from range(?)",
                [rows])  # fmt: skip
    con.execute("create or replace table quarantine.esp_events_rejects as select 'esp' as source")
    con.execute("create table if not exists ops.runs (run_id varchar, started_at timestamp, finished_at timestamp, "
                "status varchar)")  # fmt: skip
    return con


def test_publish_that_runs_out_of_space_for_parquet_changes_nothing(tmp_path, tmpfs):
    """The new file fits, its Parquet copies don't: nothing is swapped, nothing is left behind."""
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    con = _working(settings, 10)
    publish(con, settings, run_id="run1")
    parquet = settings.published_dir / "parquet"
    shutil.move(parquet, tmp_path / "parquet1")
    tmpfs(parquet, 1 << 20)
    for f in (tmp_path / "parquet1").iterdir():
        shutil.copy2(f, parquet / f.name)
    fill_up(parquet, leave_bytes=0)
    before = _shas(settings.published_dir)
    con.execute("create or replace table marts.customers as select range as n, 'y' || range as s from range(50000)")
    with pytest.raises(PublishError) as err:
        publish(con, settings, run_id="run2")
    con.close()
    assert "no space left on the device" in str(err.value)
    assert str(settings.published_dir) in str(err.value) and "untouched" in str(err.value)
    assert _shas(settings.published_dir) == before
    assert _visible(settings.published_dir) == sorted(before)
    pub = duckdb.connect(str(settings.published_db), read_only=True)
    assert pub.execute("select count(*) from marts.customers").fetchone() == (10,)
    pub.close()


def test_publish_that_runs_out_of_space_for_the_new_file_changes_nothing(tmp_path, tmpfs):
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    tmpfs(settings.published_dir, 4 << 20)
    con = _working(settings, 10)
    publish(con, settings, run_id="run1")
    fill_up(settings.published_dir, leave_bytes=64 << 10)
    before = _shas(settings.published_dir)
    con.execute("create or replace table marts.customers as select range as n, md5(range::varchar) as s "
                "from range(200000)")  # fmt: skip
    with pytest.raises(PublishError, match="no space left on the device"):
        publish(con, settings, run_id="run2")
    con.close()
    assert _shas(settings.published_dir) == before
    assert _visible(settings.published_dir) == sorted(before)


def test_publish_removes_what_a_killed_publish_left(tmp_path):
    """A publish killed mid-way leaves a full (or half) copy of the marts in hidden temp files; the next
    publish, which holds the writer lock, removes them."""
    settings = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})
    con = _working(settings, 10)
    publish(con, settings, run_id="run1")
    leftovers = [settings.published_dir / ".rapport.killed_run.duckdb.tmp",
                 settings.published_dir / ".rapport.killed_run.duckdb.tmp.wal",
                 settings.published_dir / "parquet" / ".marts.customers.killed_run.parquet.tmp"]  # fmt: skip
    for path in leftovers:
        path.write_bytes(b"half a copy of the marts")
    publish(con, settings, run_id="run2")
    con.close()
    assert [p for p in leftovers if p.exists()] == []
    assert temp_files(settings.published_dir) == []
    assert (settings.published_dir / "parquet" / "marts.customers.parquet").exists()
