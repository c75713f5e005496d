"""Blue/green publishing of the marts for BI tools.

The new file is built beside the published one, checkpointed and closed, then `os.replace`d over it:
readers that opened the old file keep their snapshot, new readers see the new file, and a run that fails
before the swap leaves the previous file byte-identical. The file is written in DuckDB's v1.4.0 storage
format because BI tools embed DuckDB 1.x, which cannot open 2.0-format files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from rapport.config import Settings

PUBLISHED_SCHEMAS = ("marts", "quarantine")
STORAGE_VERSION = "v1.4.0"


@dataclass(frozen=True)
class PublishResult:
    path: Path
    parquet_dir: Path
    tables: list[str]


def _relations(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = current_database() and table_schema = ? order by table_name",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def publish(con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str) -> PublishResult:
    """Copy marts, quarantine and ops.runs from the working warehouse into a new published file, then swap.

    `con` is the working warehouse (read-write, under the writer lock).
    """
    out_dir = settings.published_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    tmp = out_dir / f".rapport.{safe}.duckdb.tmp"
    tmp.unlink(missing_ok=True)
    tables: list[str] = []
    con.execute(f"attach '{tmp}' as pub (storage_version '{STORAGE_VERSION}')")
    try:
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema if not exists pub.{schema}")
            for name in _relations(con, schema):
                rel = f"{schema}.{_quote(name)}"
                # Views become tables: the published file must stand alone.
                con.execute(f"create table pub.{rel} as select * from {rel}")
                tables.append(f"{schema}.{name}")
        con.execute("create schema if not exists pub.ops")
        con.execute("create table pub.ops.runs as select * from ops.runs order by started_at")
        # The published copy records this run as successful: publishing is its last gated step.
        con.execute(
            "update pub.ops.runs set status = 'success', finished_at = coalesce(finished_at, now()::timestamp) "
            "where run_id = ?",
            [run_id],
        )
        tables.append("ops.runs")
        con.execute("checkpoint pub")
    except BaseException:
        con.execute("detach pub")
        tmp.unlink(missing_ok=True)
        raise
    con.execute("detach pub")
    # The swap is the commit point of publishing; Parquet follows (a crash in between is mended by a rerun).
    os.replace(tmp, settings.published_db)
    _fsync_dir(out_dir)
    con.execute(f"attach '{settings.published_db}' as pub (read_only)")
    try:
        _write_parquet(con, tables, out_dir / "parquet", safe)
    finally:
        con.execute("detach pub")
    return PublishResult(settings.published_db, out_dir / "parquet", tables)


def _write_parquet(con: duckdb.DuckDBPyConnection, tables: list[str], parquet_dir: Path, tag: str) -> None:
    """One Parquet file per published table, each replaced atomically."""
    parquet_dir.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for table in tables:
        schema, name = table.split(".", 1)
        final = parquet_dir / f"{schema}.{name}.parquet"
        tmp = parquet_dir / f".{schema}.{name}.{tag}.parquet.tmp"
        con.execute(f"copy (select * from pub.{schema}.{_quote(name)}) to '{tmp}' (format parquet)")
        os.replace(tmp, final)
        wanted.add(final.name)
    for stale in parquet_dir.glob("*.parquet"):
        if stale.name not in wanted:
            stale.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
