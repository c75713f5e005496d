"""Publishing by difference (rapport.publishing.publish_diff): the file built from a copy of the previous one
holds exactly what a fresh publish writes; any failure leaves the previous file; any mismatch writes afresh."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from rapport.core.config import load_settings
from rapport.publishing import publish as publish_module
from rapport.publishing import publish_diff, publish_state
from rapport.publishing.publish import publish


@pytest.fixture()
def settings(tmp_path):
    return load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "wh")})


def _working(settings) -> duckdb.DuckDBPyConnection:
    """A working warehouse shaped like the real one: the identities a view over an ids table, keyed customers
    (a null key and a -0.0 among them), an append-only history, small marts, quarantine, ops.runs."""
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.work_db))
    for schema in ("marts", "quarantine", "ops", "intermediate"):
        con.execute(f"create schema {schema}")
    con.execute(
        "create table intermediate.ids as select 'esp.contact' as source, 'c' || range as source_id, "
        "'cust' || (range // 3) as customer_id, true as is_current from range(3000)"
    )
    con.execute(
        "create view marts.customer_identities as "
        "select source, source_id, customer_id from intermediate.ids where is_current"
    )
    con.execute(
        "create table marts.customers as select 'cust' || range as customer_id, (range * 1.5)::double as revenue, "
        "'name' || range as full_name from range(1000)"
    )
    con.execute(
        "insert into marts.customers values (null, 7.0, 'no key'), ('cust-zero', '-0.0'::double, 'signed zero')"
    )
    con.execute(
        "create table marts.segment_history as select date '2026-07-01' as as_of_date, 'cust' || range as "
        "customer_id, 'entered' as change from range(1000)"
    )
    con.execute("create table marts.customer_segments as select 'cust' || range as customer_id, "
                "date '2026-07-01' as as_of_date from range(1000)")  # fmt: skip
    con.execute("create table marts.segment_summary as select 'Champions' as rfm_segment, 10 as customers")
    con.execute("create table marts.value_concentration as select 0.5::double as top_20pct_revenue_share")
    con.execute("create table quarantine.esp_events_rejects as select 'esp' as source, 'bad line' as reason")
    con.execute("create table ops.runs (run_id varchar, started_at timestamp, finished_at timestamp, status varchar)")
    return con


def _next_day(con: duckdb.DuckDBPyConnection, day: int) -> None:
    """What a day changes: a few new identity records and one moved, some customers' rows, the history gains
    rows, every segment row's as-of date; the signed zero becomes a plain zero; one small mart changes."""
    con.execute(
        "insert into intermediate.ids select 'orders.guest_order', ? || '-g' || range, 'cust' || range, true "
        "from range(20)",
        [str(day)],
    )
    con.execute("update intermediate.ids set is_current = false where source_id = 'c5'")
    con.execute("insert into intermediate.ids values ('esp.contact', 'c5', 'cust999', true)")
    con.execute("update marts.customers set revenue = revenue + 1 where customer_id in ('cust1', 'cust2', 'cust3')")
    con.execute("update marts.customers set revenue = 0.0 where customer_id = 'cust-zero'")
    con.execute("update marts.customers set full_name = 'renamed' where customer_id is null")
    con.execute("delete from marts.customers where customer_id = 'cust4'")
    con.execute("insert into marts.customers values (?, 1.0, 'new')", [f"new{day}"])
    con.execute(
        "insert into marts.segment_history select date '2026-07-01' + ?::integer, 'cust' || range, 'changed' "
        "from range(30)",
        [day],
    )
    con.execute("update marts.customer_segments set as_of_date = date '2026-07-01' + ?::integer", [day])
    con.execute("update marts.segment_summary set customers = customers + ?", [day])


def _run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute("insert into ops.runs values (?, now()::timestamp, null, 'running')", [run_id])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shas(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): _sha(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def _fresh_publish(settings, tmp_path: Path, run_id: str) -> Path:
    """The same working file published afresh (no previous file) in another warehouse directory."""
    other = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "fresh")})
    shutil.rmtree(other.warehouse_dir, ignore_errors=True)
    other.work_db.parent.mkdir(parents=True)
    shutil.copyfile(settings.work_db, other.work_db)
    con = duckdb.connect(str(other.work_db))
    result = publish(con, other, run_id=run_id)
    con.close()
    assert set(result.how.values()) == {"written"}
    return other.published_dir


def _differences(a: Path, b: Path) -> dict[str, object]:
    """Per table: columns and types, then rows (`except all` both ways, sign bit of floats included), of two
    published files, and of each file's Parquet copy against its own tables."""
    con = duckdb.connect()
    con.execute(f"attach '{a / 'rapport.duckdb'}' as a (read_only)")
    con.execute(f"attach '{b / 'rapport.duckdb'}' as b (read_only)")
    found: dict[str, object] = {}
    shape = "select schema_name || '.' || table_name, column_name, data_type from duckdb_columns() " \
            "where database_name = ? order by all"  # fmt: skip
    cols_a, cols_b = con.execute(shape, ["a"]).fetchall(), con.execute(shape, ["b"]).fetchall()
    if cols_a != cols_b:
        found["columns"] = (cols_a, cols_b)
    for table in sorted({r[0] for r in cols_b}):
        signs = "".join(f", signbit({c})" for t, c, d in cols_b if t == table and d == "DOUBLE")
        parts = {"a": f"a.{table}", "b": f"b.{table}", "pa": f"'{a}/parquet/{table}.parquet'",
                 "pb": f"'{b}/parquet/{table}.parquet'"}  # fmt: skip
        # this run's finished_at is the time of its publish, which differs between the two publishes
        star = "* exclude (finished_at)" if table == "ops.runs" else "*"
        for x, y in (("a", "b"), ("b", "a"), ("a", "pa"), ("pa", "a"), ("b", "pb"), ("pb", "b")):
            n = con.execute(
                f"select count(*) from (select {star}{signs} from {parts[x]} "
                f"except all select {star}{signs} from {parts[y]})"
            ).fetchone()[0]
            if n:
                found[f"{table} {x}-{y}"] = n
    return found


def test_difference_publish_equals_a_fresh_publish_over_two_days(settings, tmp_path):
    con = _working(settings)
    _run(con, "day0")
    first = publish(con, settings, run_id="day0")
    assert set(first.how.values()) == {"written"}  # no previous file: the full path
    for day in (1, 2):
        _next_day(con, day)
        _run(con, f"day{day}")
        result = publish(con, settings, run_id=f"day{day}")
        assert result.how["marts.customer_identities"] == "difference"
        assert result.how["marts.customers"] == "difference"
        assert result.how["marts.segment_history"] == "difference"
        assert result.how["marts.value_concentration"] == "kept"
        assert result.how["quarantine.esp_events_rejects"] == "kept"
        assert result.how["marts.segment_summary"] == "rewritten"  # small, and changed
        header = settings.published_db.read_bytes()[:20]
        assert int.from_bytes(header[12:20], "little") <= 67  # still v1.4.0 storage: DuckDB 1.x opens it
        con.execute("checkpoint")
        fresh = _fresh_publish(settings, tmp_path, f"day{day}")
        assert _differences(fresh, settings.published_dir) == {}
    pub = duckdb.connect(str(settings.published_db), read_only=True)
    # the hand-made changes, as a reader sees them
    assert pub.execute("select customer_id from marts.customer_identities where source_id = 'c5'").fetchall() == [
        ("cust999",)
    ]
    assert pub.execute("select count(*) from marts.customer_identities").fetchone() == (3040,)
    assert pub.execute("select signbit(revenue) from marts.customers where customer_id = 'cust-zero'").fetchone() == (
        False,
    )
    assert pub.execute("select full_name from marts.customers where customer_id is null").fetchall() == [("renamed",)]
    assert pub.execute("select count(*) from marts.segment_history").fetchone() == (1060,)
    pub.close()
    con.close()


def test_a_repeated_key_in_the_working_relation_is_written_afresh(settings, tmp_path):
    con = _working(settings)
    _run(con, "day0")
    publish(con, settings, run_id="day0")
    # an exact duplicate of an unchanged row: no pair differs, only the row count tells
    con.execute("insert into marts.customers select * from marts.customers where customer_id = 'cust10'")
    _run(con, "day1")
    result = publish(con, settings, run_id="day1")
    assert result.how["marts.customers"] == "rewritten"
    con.execute("checkpoint")
    assert _differences(_fresh_publish(settings, tmp_path, "day1"), settings.published_dir) == {}
    con.close()


def test_nothing_changed_keeps_every_mart_and_writes_only_the_runs(settings):
    from rapport.transform import build_state

    con = _working(settings)
    build_state.record(con, "marts", "fingerprint-1", "day0")
    _run(con, "day0")
    publish(con, settings, run_id="day0")
    parquet = settings.published_dir / "parquet"
    before = {p.name: publish_state.identity(p) for p in parquet.glob("*.parquet")}
    _run(con, "day0-again")
    result = publish(con, settings, run_id="day0-again")
    assert {t: h for t, h in result.how.items() if h != "kept"} == {"ops.runs": "rewritten"}
    after = {p.name: publish_state.identity(p) for p in parquet.glob("*.parquet")}
    assert {n for n in before if before[n] != after[n]} == {"ops.runs.parquet"}
    pub = duckdb.connect(str(settings.published_db), read_only=True)
    assert pub.execute("select run_id, status from ops.runs order by run_id").fetchall() == [
        ("day0", "running"),
        ("day0-again", "success"),
    ]
    pub.close()
    con.close()


# --- failures: the previous file stays byte-identical, no temp file is left --------------------------------


def _fail(*_args, **_kwargs):
    raise RuntimeError("injected failure")


def _published_day0_then_day1(settings) -> duckdb.DuckDBPyConnection:
    """A working file published on day 0, then built for day 1 (not yet published)."""
    con = _working(settings)
    _run(con, "day0")
    publish(con, settings, run_id="day0")
    _next_day(con, 1)
    _run(con, "day1")
    return con


STEPS = [
    (publish_diff.shutil, "copyfile"),  # the byte copy
    (publish_diff, "_difference"),
    (publish_diff, "_small_and_equal"),
    (publish_diff, "_rewrite"),
    (publish_diff, "copy_runs"),
    (publish_module, "_stage_parquet"),
]


@pytest.mark.parametrize(("owner", "name"), STEPS, ids=[n for _, n in STEPS])
def test_a_failure_at_each_step_leaves_the_previous_files(settings, monkeypatch, owner, name):
    con = _published_day0_then_day1(settings)
    before = _shas(settings.published_dir)
    monkeypatch.setattr(owner, name, _fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        publish(con, settings, run_id="day1")
    con.close()
    assert _shas(settings.published_dir) == before  # every file as it was, and none new (not even a hidden temp file)


def test_a_failure_after_writing_into_the_copy_leaves_the_previous_files(settings, monkeypatch):
    con = _published_day0_then_day1(settings)
    before = _shas(settings.published_dir)
    real_fill = publish_diff._fill

    def fill_then_break(con, *args):
        real_fill(con, *args)  # every table written into the copy
        con.execute("create table pub.marts.zz_broken as select 1 as x")  # changes the catalog, then fails
        raise RuntimeError("injected failure")

    monkeypatch.setattr(publish_diff, "_fill", fill_then_break)
    with pytest.raises(RuntimeError, match="injected failure"):
        publish(con, settings, run_id="day1")
    con.close()
    assert _shas(settings.published_dir) == before


def test_a_crash_after_the_swap_before_the_state_makes_the_next_publish_write_afresh(settings, monkeypatch):
    con = _published_day0_then_day1(settings)
    monkeypatch.setattr(publish_state, "save", _fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        publish(con, settings, run_id="day1")
    monkeypatch.undo()
    # the new file is published, but the state still describes the one before: no copy starts from it
    _next_day(con, 2)
    _run(con, "day2")
    result = publish(con, settings, run_id="day2")
    assert set(result.how.values()) == {"written"}
    con.close()


# --- the previous file is no fit: everything is written afresh ----------------------------------------------


def _published_twice(settings) -> duckdb.DuckDBPyConnection:
    con = _published_day0_then_day1(settings)
    return con


def _keep_identity(path: Path, change) -> None:
    """Change a file in place and give it back its modification time (so only its content differs)."""
    st = path.stat()
    change(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_no_state_writes_afresh(settings):
    con = _published_twice(settings)
    (settings.published_dir / publish_state.STATE_NAME).unlink()
    assert set(publish(con, settings, run_id="day1").how.values()) == {"written"}
    con.close()


def test_a_corrupt_previous_file_writes_afresh(settings, tmp_path):
    con = _published_twice(settings)

    def scramble(path: Path) -> None:
        with open(path, "r+b") as fh:
            fh.seek(0)
            fh.write(b"\0" * 8192)  # both headers gone

    _keep_identity(settings.published_db, scramble)
    assert publish_state.load(settings.published_dir, settings.published_db, "v1.4.0") is not None  # still matches
    result = publish(con, settings, run_id="day1")
    assert set(result.how.values()) == {"written"}
    con.execute("checkpoint")
    assert _differences(_fresh_publish(settings, tmp_path, "day1"), settings.published_dir) == {}
    con.close()


def test_another_schema_writes_afresh(settings):
    con = _published_twice(settings)
    con.execute("alter table marts.segment_summary alter customers type bigint")
    assert set(publish(con, settings, run_id="day1").how.values()) == {"written"}
    con.close()


def test_another_storage_version_writes_afresh(settings):
    con = _published_twice(settings)
    path = settings.published_dir / publish_state.STATE_NAME
    state = json.loads(path.read_text())
    state["storage_version"] = "v1.0.0"
    path.write_text(json.dumps(state))
    assert set(publish(con, settings, run_id="day1").how.values()) == {"written"}
    con.close()


def test_an_erasure_since_the_last_publish_writes_afresh(settings):
    con = _published_twice(settings)
    con.execute("create table ops.erasures (email_hash varchar, erased_at timestamp)")
    con.execute("insert into ops.erasures values ('h', now()::timestamp)")
    assert set(publish(con, settings, run_id="day1").how.values()) == {"written"}
    con.close()


def test_a_parquet_file_older_than_the_state_is_rewritten(settings, tmp_path):
    """A Parquet file that is not the one the last publish wrote (here: the one from the publish before, as a
    crash between the swap and the Parquet renames would leave it) is rewritten even when its table is kept."""
    con = _working(settings)
    _run(con, "day0")
    publish(con, settings, run_id="day0")
    parquet = settings.published_dir / "parquet" / "marts.value_concentration.parquet"
    shutil.copyfile(parquet, tmp_path / "day0.parquet")
    con.execute("update marts.value_concentration set top_20pct_revenue_share = 0.75")
    _run(con, "day1")
    publish(con, settings, run_id="day1")
    os.replace(tmp_path / "day0.parquet", parquet)  # the day before's copy is back
    _run(con, "day2")
    result = publish(con, settings, run_id="day2")
    assert result.how["marts.value_concentration"] == "kept"
    assert duckdb.connect().execute(f"select * from '{parquet}'").fetchall() == [(0.75,)]
    con.close()


def test_open_reader_keeps_its_snapshot_across_a_difference_publish(settings):
    con = _published_twice(settings)
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    count = "select count(*) from marts.customer_identities"
    assert reader.execute(count).fetchone() == (3000,)
    result = publish(con, settings, run_id="day1")
    assert result.how["marts.customer_identities"] == "difference"
    assert reader.execute(count).fetchone() == (3000,)
    assert reader.execute("select customer_id from marts.customer_identities where source_id = 'c5'").fetchone() == (
        "cust1",
    )
    code = f"import duckdb, sys; print(duckdb.connect(sys.argv[1], read_only=True).execute('{count}').fetchone()[0])"
    out = subprocess.run([sys.executable, "-c", code, str(settings.published_db)], capture_output=True, text=True)
    assert out.stdout.strip() == "3020", out.stderr
    reader.close()
    con.close()
