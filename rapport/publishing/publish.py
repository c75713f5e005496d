"""Blue/green publishing of the marts for BI tools, by difference from the previous published file.

The new file is built beside the published one, checkpointed, fsynced and closed, then `os.replace`d over it:
readers that opened the old file keep their snapshot, new readers see the new file, and a run that fails
before the swap leaves the previous file byte-identical. The file is written in DuckDB's v1.4.0 storage
format because BI tools embed DuckDB 1.x, which cannot open 2.0-format files.

A day's publish costs what changed (issue 16): when the previous published file is usable, the new file
starts as a copy of it and each table takes the cheapest exact route to the working warehouse's content
(rapport.publishing.table_routes): an unchanged table is kept, and so is its Parquet file; a table where few
rows changed (a small table) or rows were only appended (a big one) is patched in place and its Parquet file
rewritten; a new table, one whose columns or types changed, or one that changed otherwise is written afresh.
`ops.runs` is always written afresh. The result equals a from-scratch publish of the same warehouse, table by table (row
multisets, column names and types). A full write (every table afresh, as before) happens when there is no
previous file, it cannot be opened, it has another storage version, holds anything but tables of the
published schemas, or has a WAL beside it (someone wrote into it), or when more than half of it is free
blocks (left by tables replaced in earlier runs; DuckDB reuses them but never shrinks the file). A table
with more deleted-but-kept rows than a fifth of its live rows is rewritten whole (see table_routes).

The Parquet copies are written (as hidden temp files) before the swap too, so a publish that fails for lack
of disk space changes nothing a reader sees, and leaves no temp file behind. Temp files of a publish that
was killed outright are removed by the next one. A marker file in the Parquet folder spans the swap and the
Parquet renames: a publish killed between them leaves it, and the next publish then rewrites every Parquet
file instead of keeping those of unchanged tables.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from rapport.core.config import Settings
from rapport.core.warehouse import tables_in
from rapport.publishing import table_routes
from rapport.publishing.table_routes import CREATED, REPLACED, UNCHANGED
from rapport.publishing.table_routes import quote as _quote

log = logging.getLogger(__name__)

PUBLISHED_SCHEMAS = ("marts", "quarantine")
STORAGE_VERSION = "v1.4.0"
_DB_TEMP_GLOB = ".rapport.*.duckdb.tmp*"  # the new file and DuckDB's .wal beside it
_PARQUET_TEMP_GLOB = ".*.parquet.tmp"
_PARQUET_PENDING = ".swap-pending"  # see the module docstring


class PublishError(RuntimeError):
    """Publishing failed before the swap: the previously published file and Parquet files are untouched."""


@dataclass(frozen=True)
class PublishResult:
    path: Path
    parquet_dir: Path
    tables: list[str]
    # schema.table -> route (table_routes: unchanged, patched, replaced, created; ops.runs is "replaced")
    routes: dict[str, str] = field(default_factory=dict)
    # why the file was written in full rather than from the previous one; None when it was not
    full_write: str | None = None


def publish(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, from_scratch: bool = False
) -> PublishResult:
    """Bring marts, quarantine and ops.runs of the working warehouse into a new published file, then swap.

    `con` is the working warehouse (read-write, under the writer lock: so no other publish is under way, and
    any temp file found here is a leftover of a publish that was killed). `from_scratch` writes every table
    and Parquet file afresh: an erasure needs that, since a copy of the previous file keeps the bytes of
    deleted rows and dropped tables until DuckDB happens to overwrite them.
    """
    out_dir = settings.published_dir
    parquet_dir = out_dir / "parquet"
    parquet_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir)
    pending = parquet_dir / _PARQUET_PENDING
    parquet_trusted = not pending.exists()  # else a publish died between its swap and its Parquet renames
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    tmp = out_dir / f".rapport.{safe}.duckdb.tmp"
    staged: list[tuple[Path, Path]] = []
    try:
        full_write = "asked for" if from_scratch else _start_from_previous(con, settings.published_db, tmp)
        try:
            routes = _build(con, tmp, run_id, from_previous=full_write is None)
        except duckdb.Error as exc:
            # A previous file damaged past its catalog fails only when its tables are read: write in full.
            # (A failure of the working warehouse's own tables fails that write again, and is raised.)
            if full_write is not None or _no_space(exc):
                raise
            _discard([tmp, Path(f"{tmp}.wal")])
            full_write = f"bringing the previous file up to date failed ({type(exc).__name__}: {exc})"
            log.warning("publishing in full: %s", full_write)
            routes = _build(con, tmp, run_id, from_previous=False)
        tables = list(routes)
        rewrite = [
            t for t in tables
            if routes[t] != UNCHANGED or not parquet_trusted or not (parquet_dir / f"{t}.parquet").exists()
        ]
        staged = _stage_parquet(con, tmp, rewrite, parquet_dir, safe)
        _fsync_file(tmp)
    except BaseException as exc:
        _discard([tmp, Path(f"{tmp}.wal"), *parquet_dir.glob(f".*.{safe}.parquet.tmp")])
        if _no_space(exc):
            raise PublishError(_no_space_message(out_dir, settings.published_db, exc)) from exc
        raise
    pending.touch()
    _fsync_dir(parquet_dir)
    # The swap is the commit point of publishing; the Parquet renames follow (they need no space). A crash
    # between the two leaves new marts beside the previous Parquet files and the pending marker: the next
    # run rewrites every Parquet file.
    os.replace(tmp, settings.published_db)
    _fsync_dir(out_dir)
    for staged_file, final in staged:
        os.replace(staged_file, final)
    wanted = {f"{t}.parquet" for t in tables}
    for stale in parquet_dir.glob("*.parquet"):
        if stale.name not in wanted:
            stale.unlink()
    _fsync_dir(parquet_dir)
    pending.unlink()
    return PublishResult(settings.published_db, parquet_dir, tables, routes, full_write)


def _start_from_previous(con: duckdb.DuckDBPyConnection, published: Path, tmp: Path) -> str | None:
    """Copy the previous published file to `tmp` and check it can be brought up to date there. Returns None
    when it can, else why not (then `tmp` does not exist and the file is written in full)."""
    if not published.exists():
        return "no previous file"
    if Path(f"{published}.wal").exists():
        return "a WAL beside the previous file"
    number = _storage_number(published)
    if number is None:
        return "the previous file cannot be opened (no DuckDB header)"
    if number != _storage_number_written():
        return f"storage version number {number}, not {_storage_number_written()} ({STORAGE_VERSION})"
    shutil.copyfile(published, tmp)
    reason = None
    try:
        con.execute(f"attach '{tmp}' as pub")
    except duckdb.Error as exc:
        if _no_space(exc):
            raise
        reason = f"the previous file cannot be opened ({type(exc).__name__})"
    else:
        try:
            reason = _unusable(con)
        except duckdb.Error as exc:  # its catalog is damaged
            if _no_space(exc):
                raise
            reason = f"the previous file cannot be opened ({type(exc).__name__})"
        finally:
            with contextlib.suppress(duckdb.Error):
                con.execute("detach pub")
    if reason:
        _discard([tmp, Path(f"{tmp}.wal")])
    return reason


def _storage_number(path: Path) -> int | None:
    """The storage version number in a DuckDB file's main header (None if it is no DuckDB file)."""
    with open(path, "rb") as f:
        header = f.read(20)
    return int.from_bytes(header[12:20], "little") if header[8:12] == b"DUCK" else None


@functools.cache
def _storage_number_written() -> int | None:
    """The number this DuckDB writes for STORAGE_VERSION (DuckDB names no storage version of an attached
    file; its header has the number): read from a tiny file written so."""
    with tempfile.TemporaryDirectory() as tmp_dir:
        probe = Path(tmp_dir) / "probe.duckdb"
        con = duckdb.connect()
        try:
            con.execute(f"attach '{probe}' as probe (storage_version '{STORAGE_VERSION}')")
            con.execute("create table probe.t as select 1 as x")
            con.execute("detach probe")
        finally:
            con.close()
        return _storage_number(probe)


def _unusable(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why the attached copy `pub` is no base for a publish by difference, or None."""
    allowed = (*PUBLISHED_SCHEMAS, "ops")
    others = con.execute(
        "select count(*) from duckdb_tables() where database_name = 'pub' and schema_name not in "
        f"({', '.join('?' for _ in allowed)})",
        list(allowed),
    ).fetchall()[0][0]
    views = con.execute(
        "select count(*) from duckdb_views() where database_name = 'pub' and not internal"
    ).fetchall()[0][0]
    if others or views:
        return "the previous file holds relations outside the published tables"
    [(used, free)] = con.execute(
        "select used_blocks, free_blocks from pragma_database_size() where database_name = 'pub'"
    ).fetchall()
    if free > used:
        return f"the previous file is mostly free blocks ({free} free, {used} used)"
    return None


def _build(con: duckdb.DuckDBPyConnection, tmp: Path, run_id: str, *, from_previous: bool) -> dict[str, str]:
    """Bring the new published file at `tmp` (a copy of the previous one, or new) to the working warehouse's
    content, checkpointed and detached. Returns its tables and the route each took."""
    routes: dict[str, str] = {}
    work, order = con.execute("select current_database(), current_setting('preserve_insertion_order')").fetchall()[0]
    # The published rows keep the working tables' order: the next run compares big tables row by row.
    con.execute("set preserve_insertion_order = true")
    if from_previous:
        con.execute(f"attach '{tmp}' as pub")
    else:
        con.execute(f"attach '{tmp}' as pub (storage_version '{STORAGE_VERSION}')")
    plans: list[table_routes.Plan] = []
    try:
        existing = {
            (s, t)
            for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'pub'"
            ).fetchall()
        }
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema if not exists pub.{schema}")
            for name in tables_in(con, schema, views=True):
                started = time.perf_counter()
                plans.append(table_routes.plan(con, work, schema, name, exists=(schema, name) in existing,
                                               tag=len(plans)))
                log.info("%s: %s (%s touched rows), compared in %.2f s", plans[-1].table, plans[-1].route,
                         plans[-1].touched, time.perf_counter() - started)
        wanted = {p.table for p in plans if p.route != REPLACED}
        for schema, name in sorted(existing):  # replaced, dropped from the warehouse, and ops.runs (rewritten)
            if f"{schema}.{name}" not in wanted:
                con.execute(f"drop table pub.{_quote(schema)}.{_quote(name)}")
        # DuckDB frees dropped tables' blocks at a checkpoint: taken now, the tables written next reuse them,
        # and the file does not grow by what was replaced (at 1M without it: 676 MB instead of 354).
        con.execute("checkpoint pub")
        for p in plans:
            started = time.perf_counter()
            table_routes.apply(con, p)
            routes[p.table] = p.route
            log.info("%s: %s in %.2f s", p.table, p.route, time.perf_counter() - started)
        con.execute("create schema if not exists pub.ops")
        con.execute("create table pub.ops.runs as select * from ops.runs order by started_at")
        # The published copy records this run as successful: publishing is its last gated step.
        con.execute(
            "update pub.ops.runs set status = 'success', finished_at = coalesce(finished_at, now()::timestamp) "
            "where run_id = ?",
            [run_id],
        )
        routes["ops.runs"] = REPLACED if ("ops", "runs") in existing else CREATED
        con.execute("checkpoint pub")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a failed checkpoint may have invalidated it already
            con.execute("detach pub")
        raise
    finally:
        with contextlib.suppress(duckdb.Error):
            table_routes.discard(con, plans)
        with contextlib.suppress(duckdb.Error):
            con.execute(f"set preserve_insertion_order = {'true' if order else 'false'}")
    con.execute("detach pub")
    return routes


def _stage_parquet(
    con: duckdb.DuckDBPyConnection, db: Path, tables: list[str], parquet_dir: Path, tag: str
) -> list[tuple[Path, Path]]:
    """One hidden temp Parquet file per table of the new file `db`; returns (temp file, final path) pairs."""
    staged: list[tuple[Path, Path]] = []
    con.execute(f"attach '{db}' as pub (read_only)")
    try:
        for table in tables:
            schema, name = table.split(".", 1)
            tmp = parquet_dir / f".{schema}.{name}.{tag}.parquet.tmp"
            staged.append((tmp, parquet_dir / f"{schema}.{name}.parquet"))
            con.execute(f"copy (select * from pub.{schema}.{_quote(name)}) to '{tmp}' (format parquet)")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("detach pub")
        raise
    con.execute("detach pub")
    return staged


def remove_leftovers(out_dir: Path) -> list[Path]:
    """Remove the temp files of publishes that never finished (killed, or their machine died): each is a
    full, possibly half-written copy of the marts. Call only under the writer lock."""
    found = sorted([*out_dir.glob(_DB_TEMP_GLOB), *(out_dir / "parquet").glob(_PARQUET_TEMP_GLOB)])
    _discard(found)
    return found


def _discard(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, duckdb.Error) and ("No space left on device" in str(exc) or "quota" in str(exc).lower())


def _no_space_message(out_dir: Path, published: Path, exc: BaseException) -> str:
    try:
        free = f"{shutil.disk_usage(out_dir).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return (
        f"could not write the new published file in {out_dir}: no space left on the device ({free}); "
        f"the previously published file {published} and its Parquet files are untouched. "
        f"Free some space and rerun. ({type(exc).__name__}: {exc})"
    )


def _fsync_file(path: Path) -> None:
    # DuckDB's checkpoint syncs what it wrote; the copied bytes of unchanged tables need this too.
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
