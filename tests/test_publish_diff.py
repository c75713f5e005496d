"""Publish by difference (issue 16): a publish that starts from the previous file equals a from-scratch one.

Small real DuckDB warehouses built here. The reference is a from-scratch publish of the same working
warehouse into another directory (no previous file there: every table written afresh, as before issue 16);
tables are compared by column names and types and by `except all` both ways, and every Parquet file with
its table. The routes expected for each table follow from how the fixture changes it (counted by hand).
"""

from __future__ import annotations

import hashlib
import os
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


@pytest.fixture()
def fresh(tmp_path):
    """Settings of a second warehouse dir whose published file is written from scratch."""
    return load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "fresh")})


def _day1(settings) -> duckdb.DuckDBPyConnection:
    settings.work_db.parent.mkdir(parents=True, exist_ok=True)
    # the pipeline's settings (2 threads, preserve_insertion_order off), as the publish step opens it
    con = duckdb.connect(str(settings.work_db), config=settings.duckdb_config())
    for schema in ("marts", "quarantine", "ops"):
        con.execute(f"create schema {schema}")
    # 1,000 rows: 0-199 twice (duplicates), a NULL email every 50th row
    con.execute(
        "create table marts.identities as select i % 800 as source_id, "
        "case when i % 50 = 0 then null else 'e' || (i % 800) end as email, 'c' || (i % 800 // 3) as customer_id "
        "from range(1000) t(i)"
    )
    con.execute("create table marts.customers as select i as id, date '2026-07-01' as as_of_date from range(300) t(i)")
    con.execute("create table marts.history as select i as id, date '2026-07-01' as day from range(500) t(i)")
    con.execute("create table marts.stable as select i as id, i * 0.5 as amount from range(400) t(i)")
    con.execute("create table marts.retyped as select i::integer as n from range(50) t(i)")
    con.execute("create table marts.retired as select 1 as x")
    con.execute("create view marts.customer_count as select count(*) as n from marts.customers")
    con.execute("create table quarantine.esp_events_rejects as select 'esp' as source, 'truncated' as reason")
    con.execute(
        "create table ops.runs (run_id varchar, started_at timestamp, finished_at timestamp, status varchar)"
    )
    con.execute("insert into ops.runs values ('run1', '2026-07-01 00:00', '2026-07-01 00:10', 'running')")
    return con


def _day2(con: duckdb.DuckDBPyConnection) -> None:
    """A small day: hand-counted touched rows per table."""
    # identities: source_id 5 loses one of its two copies, 900 and 901 are new, 250's email changes
    # (touched distinct rows: (5, e5, c1), (900, ...), (901, ...), old and new 250 = 5 of 1,000: patched)
    con.execute(
        "delete from marts.identities where rowid = (select min(rowid) from marts.identities where source_id = 5)"
    )
    con.execute("insert into marts.identities values (900, 'e900', 'c300'), (901, null, 'c300')")
    con.execute("update marts.identities set email = 'new250' where source_id = 250")
    # customers: every row's as_of_date moves on (replaced)
    con.execute("update marts.customers set as_of_date = date '2026-07-02'")
    # history: 10 rows appended to 500 (patched)
    con.execute("insert into marts.history select i, date '2026-07-02' from range(500, 510) t(i)")
    # retyped: the same values as bigint (replaced: the type differs)
    con.execute("create or replace table marts.retyped as select i::bigint as n from range(50) t(i)")
    con.execute("drop table marts.retired")
    con.execute("create table marts.brand_new as select 42 as answer")
    con.execute("insert into ops.runs values ('run2', '2026-07-02 00:00', '2026-07-02 00:10', 'running')")


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select table_schema || '.' || table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = ? order by table_schema, table_name, ordinal_position",
        [catalog],
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, []).append((column, dtype))
    return out


def _differences(a: Path, b: Path) -> list[str]:
    """Every way the published files `a` and `b` (and the Parquet files beside each) differ."""
    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    ta, tb = _tables(con, "a"), _tables(con, "b")
    problems = [
        f"columns of {t}: {ta.get(t)} vs {tb.get(t)}" for t in sorted(set(ta) | set(tb)) if ta.get(t) != tb.get(t)
    ]
    for table in sorted(set(ta) & set(tb)):
        for x, y in (("a", "b"), ("b", "a")):
            extra = con.execute(f"select count(*) from (from {x}.{table} except all from {y}.{table})").fetchall()[0][0]
            if extra:
                problems.append(f"{table}: {extra} rows in {x} only")
    for catalog, path in (("a", a), ("b", b)):
        for table in ta if catalog == "a" else tb:
            pq = path.parent / "parquet" / f"{table}.parquet"
            for x, y in ((f"{catalog}.{table}", f"'{pq}'"), (f"'{pq}'", f"{catalog}.{table}")):
                extra = con.execute(f"select count(*) from (from {x} except all from {y})").fetchall()[0][0]
                if extra:
                    problems.append(f"{x} has {extra} rows not in {y}")
        names = sorted(p.name for p in (path.parent / "parquet").iterdir())
        if names != sorted(f"{t}.parquet" for t in (ta if catalog == "a" else tb)):
            problems.append(f"Parquet files beside {path}: {names}")
    con.close()
    return problems


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_publish_by_difference_equals_a_fresh_publish_and_takes_the_cheap_routes(settings, fresh):
    con = _day1(settings)
    first = publish(con, settings, run_id="run1")
    assert first.full_write == "no previous file"
    parquet = first.parquet_dir
    before = {p.name: _stamp(p) for p in parquet.glob("*.parquet")}
    _day2(con)
    second = publish(con, settings, run_id="run2")
    assert second.full_write is None
    assert second.routes == {
        "marts.brand_new": "created",
        "marts.customer_count": "unchanged",  # the view: 300 customers both days
        "marts.customers": "replaced",
        "marts.history": "patched",
        "marts.identities": "patched",
        "marts.retyped": "replaced",
        "marts.stable": "unchanged",
        "quarantine.esp_events_rejects": "unchanged",
        "ops.runs": "replaced",
    }
    reference = publish(con, fresh, run_id="run2")
    con.close()
    assert reference.full_write == "no previous file"
    assert _differences(settings.published_db, fresh.published_db) == []
    # unchanged tables keep their Parquet file (same inode, same mtime); the others are new files
    after = {p.name: _stamp(p) for p in parquet.glob("*.parquet")}
    for table, route in second.routes.items():
        name = f"{table}.parquet"
        if route == "unchanged":
            assert after[name] == before[name], table
        else:
            assert after[name] != before.get(name), table
    assert "marts.retired.parquet" not in after
    header = settings.published_db.read_bytes()[:20]
    assert int.from_bytes(header[12:20], "little") <= 67  # still the v1.4.0 storage format
    assert [p.name for p in settings.published_dir.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in parquet.iterdir() if p.name.startswith(".")] == []


def test_nothing_changed_keeps_every_table_and_parquet_file(settings):
    con = _day1(settings)
    publish(con, settings, run_id="run1")
    before = {p.name: _stamp(p) for p in (settings.published_dir / "parquet").glob("*.parquet")}
    second = publish(con, settings, run_id="run1")
    con.close()
    assert {t: r for t, r in second.routes.items() if r != "unchanged"} == {"ops.runs": "replaced"}
    after = {p.name: _stamp(p) for p in (settings.published_dir / "parquet").glob("*.parquet")}
    assert {n for n in after if after[n] == before[n]} == set(before) - {"ops.runs.parquet"}


def test_many_changed_rows_replace_the_table(settings, fresh):
    con = _day1(settings)
    publish(con, settings, run_id="run1")
    # 100 of 400 rows change (25%, over the patch limit): replaced, and still equal to a fresh publish
    con.execute("update marts.stable set amount = -1 where id < 100")
    second = publish(con, settings, run_id="run1")
    publish(con, fresh, run_id="run1")
    con.close()
    assert second.routes["marts.stable"] == "replaced"
    assert _differences(settings.published_db, fresh.published_db) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "storage_2_0"])
def test_an_unusable_previous_file_falls_back_to_a_full_write(settings, fresh, damage):
    con = _day1(settings)
    publish(con, settings, run_id="run1")
    db = settings.published_db
    if damage == "garbage":
        db.write_bytes(os.urandom(db.stat().st_size))
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:5000])
    elif damage == "missing":
        db.unlink()
    else:  # a file in DuckDB 2.0's own format, unreadable by the BI tools' DuckDB 1.x
        db.unlink()
        other = duckdb.connect(str(db))
        other.execute("create schema marts")
        other.execute("create table marts.stable as select i as id, i * 0.5 as amount from range(400) t(i)")
        other.close()
    parquet_before = {p.name: _stamp(p) for p in (settings.published_dir / "parquet").glob("*.parquet")}
    _day2(con)
    second = publish(con, settings, run_id="run2")
    publish(con, fresh, run_id="run2")
    con.close()
    expected = {
        "garbage": "the previous file cannot be opened", "truncated": "the previous file cannot be opened",
        "missing": "no previous file", "storage_2_0": "storage version",
    }[damage]
    assert second.full_write is not None and second.full_write.startswith(expected), second.full_write
    assert set(second.routes.values()) == {"created"}
    assert _differences(settings.published_db, fresh.published_db) == []
    header = settings.published_db.read_bytes()[:20]
    assert int.from_bytes(header[12:20], "little") <= 67
    # a full write rewrites every Parquet file, whatever the previous ones held
    after = {p.name: _stamp(p) for p in (settings.published_dir / "parquet").glob("*.parquet")}
    assert all(after[n] != parquet_before.get(n) for n in after)


def test_a_failure_after_the_copy_leaves_the_previous_file_and_parquet_byte_identical(settings):
    con = _day1(settings)
    publish(con, settings, run_id="run1")
    parquet = settings.published_dir / "parquet"
    before = _sha(settings.published_db)
    parquet_before = {p.name: _sha(p) for p in parquet.iterdir()}
    _day2(con)  # identities and history are patched in the copy first ...
    # ... then a mart that cannot be materialised (its view reads a table that is gone) fails the build
    con.execute("create table marts.zz_base as select 1 as x")
    con.execute("create view marts.zz_broken as select x from marts.zz_base")
    con.execute("drop table marts.zz_base")
    with pytest.raises(duckdb.Error):
        publish(con, settings, run_id="run2")
    con.close()
    assert _sha(settings.published_db) == before
    assert {p.name: _sha(p) for p in parquet.iterdir()} == parquet_before
    assert [p.name for p in settings.published_dir.iterdir() if p.name.startswith(".")] == []


def test_a_reader_of_the_old_file_keeps_it_across_a_publish_by_difference(settings):
    con = _day1(settings)
    publish(con, settings, run_id="run1")
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    _day2(con)
    second = publish(con, settings, run_id="run2")
    con.close()
    assert second.full_write is None and second.routes["marts.identities"] == "patched"
    query = "select count(*), count(*) filter (where email = 'new250') from marts.identities"
    assert reader.execute(query).fetchall() == [(1000, 0)]
    code = f"import duckdb, sys; print(duckdb.connect(sys.argv[1], read_only=True).execute({query!r}).fetchall())"
    out = subprocess.run([sys.executable, "-c", code, str(settings.published_db)], capture_output=True, text=True)
    assert out.stdout.strip() == "[(1001, 1)]", out.stderr  # 1000 rows - 1 + 2
    reader.close()


def test_a_publish_killed_between_swap_and_parquet_renames_gets_every_parquet_file_rewritten(settings, fresh):
    con = _day1(settings)
    publish(con, settings, run_id="run1")
    parquet = settings.published_dir / "parquet"
    # What such a publish leaves: the marker, and a Parquet file that does not match its table yet.
    (parquet / ".swap-pending").touch()
    duckdb.connect().execute(f"copy (select 7 as id, 7.0 as amount) to '{parquet / 'marts.stable.parquet'}'")
    second = publish(con, settings, run_id="run1")
    publish(con, fresh, run_id="run1")
    con.close()
    assert second.routes["marts.stable"] == "unchanged"
    assert _differences(settings.published_db, fresh.published_db) == []
    assert not (parquet / ".swap-pending").exists()


@pytest.mark.slow  # ~3 s idle, ~10 s at load 5: four 300,000-row tables published three times
def test_big_tables_are_compared_row_by_row_and_appends_inserted(settings, fresh, caplog):
    """From 100,000 rows on, tables are compared in storage order (the published copy keeps the working
    table's order): rows appended at the end are inserted; a table that differs from its first rows on is
    replaced at once (no touched count); one changed row in the middle replaces the table too."""
    con = _day1(settings)
    con.execute("create table marts.big_append as select i as id, 'x' || i as s from range(300000) t(i)")
    con.execute(  # ~10 MB of hashes: its replacement must reuse its blocks
        "create table marts.big_all as select i as id, md5(i::varchar) as h, date '2026-07-01' as d "
        "from range(300000) t(i)"
    )
    con.execute("create table marts.big_middle as select i as id, i % 13 as score from range(300000) t(i)")
    con.execute("create table marts.big_same as select i as id, null::varchar as s from range(300000) t(i)")
    publish(con, settings, run_id="run1")
    con.execute("insert into marts.big_append select i, 'x' || i from range(300000, 310000) t(i)")
    con.execute("insert into marts.big_append values (5, 'x5')")  # a duplicate of an existing row
    con.execute("update marts.big_all set d = date '2026-07-02'")
    con.execute("update marts.big_middle set score = -1 where id = 150000")
    caplog.set_level("INFO", logger="rapport.publishing.publish")
    second = publish(con, settings, run_id="run1")
    logged = {r.getMessage().split(":")[0]: r.getMessage() for r in caplog.records if "touched rows" in r.getMessage()}
    publish(con, fresh, run_id="run1")
    con.close()
    routes = {t: r for t, r in second.routes.items() if t.startswith("marts.big")}
    assert routes == {"marts.big_all": "replaced", "marts.big_append": "patched", "marts.big_middle": "replaced",
                      "marts.big_same": "unchanged"}
    assert "(10001 touched rows)" in logged["marts.big_append"]
    assert "(None touched rows)" in logged["marts.big_all"]  # seen in the first 2,048 rows
    assert "(1 touched rows)" in logged["marts.big_middle"]
    assert _differences(settings.published_db, fresh.published_db) == []
    # replaced tables reuse the blocks of the ones they replace: the file does not grow by them
    size, fresh_size = settings.published_db.stat().st_size, fresh.published_db.stat().st_size
    assert size <= 1.25 * fresh_size, (size, fresh_size)


def test_from_scratch_leaves_no_bytes_of_deleted_rows(settings):
    """An erasure republishes from scratch: a copy of the previous file would keep the deleted rows' bytes
    (deleted rows stay in their row groups, dropped tables in free blocks, until overwritten)."""
    con = _day1(settings)
    con.execute(
        "create table marts.people as select i as id, 'person' || i || '@example.com' as email from range(500) t(i)"
    )
    con.execute("insert into marts.people values (9999, 'erase.me.7f3a9@example.com')")
    publish(con, settings, run_id="run1")
    assert b"erase.me.7f3a9" in settings.published_db.read_bytes()  # stored as is: the check below can fail
    con.execute("delete from marts.people where id = 9999")
    result = publish(con, settings, run_id="run1", from_scratch=True)
    con.close()
    assert result.full_write == "asked for" and set(result.routes.values()) == {"created"}
    assert b"erase.me.7f3a9" not in settings.published_db.read_bytes()
