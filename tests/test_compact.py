"""Compaction of the working file after an erasure (rapport.privacy.database.compact): the rewritten copy
replaces the file only when it holds the same tables (same row counts) and the same views."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from rapport.core.config import Settings, load_settings
from rapport.privacy import database
from rapport.privacy.database import compact, copy_differences

VIEW = "marts.customer_identities"


@pytest.fixture
def settings(tmp_path) -> Settings:
    """A working file with two tables (one with deleted rows, as after an erasure) and a view over one."""
    s = load_settings({"RAPPORT_WAREHOUSE_DIR": str(tmp_path / "warehouse")})
    s.work_db.parent.mkdir(parents=True)
    with duckdb.connect(str(s.work_db)) as con:
        con.execute("create schema intermediate; create schema marts")
        con.execute("create table intermediate.pairs as select range as id, range % 3 = 0 as is_current from range(9)")
        con.execute("create table marts.customers as select range as id from range(5)")
        con.execute(f"create view {VIEW} as select id from intermediate.pairs where is_current")
        con.execute("delete from intermediate.pairs where id = 3")
    return s


def _relations(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select table_schema, table_name, table_type from information_schema.tables order by all"
        ).fetchall()


def test_a_faithful_copy_replaces_the_file_with_its_views(settings):
    before = settings.work_db.stat().st_ino
    assert compact(settings) == []
    assert settings.work_db.stat().st_ino != before  # the file was replaced by the copy
    assert _relations(settings.work_db) == [
        ("intermediate", "pairs", "BASE TABLE"),
        ("marts", "customer_identities", "VIEW"),
        ("marts", "customers", "BASE TABLE"),
    ]
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        assert con.execute(f"select id from {VIEW} order by id").fetchall() == [(0,), (6,)]  # 3 was deleted
    assert not list(settings.work_db.parent.glob(".*.compact"))


def test_a_copy_that_lost_a_view_fails_loudly_and_keeps_the_original(settings, monkeypatch, caplog):
    real_copy = database._copy_database

    def copy_losing_the_view(con, original, copy):  # type: ignore[no-untyped-def]
        real_copy(con, original, copy)
        con.execute(f"drop view {copy}.{VIEW}")  # what a copy that skipped the view would hold

    monkeypatch.setattr(database, "_copy_database", copy_losing_the_view)
    before = settings.work_db.stat().st_ino
    with caplog.at_level(logging.WARNING, logger="rapport.orchestration.forget"):
        assert compact(settings) == [f"view {VIEW} missing"]
    assert f"view {VIEW} missing" in caplog.text
    assert settings.work_db.stat().st_ino == before  # the original file, not the copy
    assert ("marts", "customer_identities", "VIEW") in _relations(settings.work_db)
    assert not list(settings.work_db.parent.glob(".*.compact"))  # the rejected copy is gone


def test_differences_name_tables_and_views_the_copy_holds_otherwise(tmp_path):
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    con.execute(f"attach '{tmp_path / 'b.duckdb'}' as b")
    for db in ("a", "b"):
        con.execute(f"create schema {db}.marts")
        con.execute(f"create table {db}.marts.t as select range as x from range(3)")
        con.execute(f"create view {db}.marts.v as select x from marts.t")
        con.execute(f"create view {db}.marts.w as select x from marts.t")
    assert copy_differences(con, "a", "b") == []
    con.execute("delete from b.marts.t where x = 0")
    con.execute("create or replace view b.marts.v as select x + 1 as x from marts.t")
    con.execute("drop view b.marts.w")
    con.execute("create view b.marts.extra as select 1 as y")
    assert copy_differences(con, "a", "b") == [
        "table marts.t: 3 rows, 2 in the copy",
        "view marts.extra not in the original",
        "view marts.v defined otherwise",
        "view marts.w missing",
    ]
    con.close()
