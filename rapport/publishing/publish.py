"""Blue/green publishing of the marts for BI tools.

The new file is built beside the published one, checkpointed and closed, then `os.replace`d over it:
readers that opened the old file keep their snapshot, new readers see the new file, and a run that fails
before the swap leaves the previous file byte-identical. The file is written in DuckDB's v1.4.0 storage
format because BI tools embed DuckDB 1.x, which cannot open 2.0-format files.

The Parquet copies are written (as hidden temp files) before the swap too, so a publish that fails for lack
of disk space changes nothing a reader sees, and leaves no temp file behind. Temp files of a publish that
was killed outright are removed by the next one.

Cost: every table is written afresh on every run, since every large mart changes daily (`as_of_date`,
`last_assigned_at`, new segment_history rows); at 1M people the file's tables take about two thirds of the
step and the Parquet copies the rest, customer_identities 40% of both (bench/RESULTS.md "Incremental day").
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from rapport.core.config import Settings
from rapport.core.warehouse import UTC_NOW, tables_in

PUBLISHED_SCHEMAS = ("marts", "quarantine")
STORAGE_VERSION = "v1.4.0"
_DB_TEMP_GLOB = ".rapport.*.duckdb.tmp*"  # the new file and DuckDB's .wal beside it
_PARQUET_TEMP_GLOB = ".*.parquet.tmp"


class PublishError(RuntimeError):
    """Publishing failed before the swap: the previously published file and Parquet files are untouched."""


@dataclass(frozen=True)
class PublishResult:
    path: Path
    parquet_dir: Path
    tables: list[str]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def publish(con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str) -> PublishResult:
    """Copy marts, quarantine and ops.runs from the working warehouse into a new published file, then swap.

    `con` is the working warehouse (read-write, under the writer lock: so no other publish is under way, and
    any temp file found here is a leftover of a publish that was killed).
    """
    out_dir = settings.published_dir
    parquet_dir = out_dir / "parquet"
    parquet_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    tmp = out_dir / f".rapport.{safe}.duckdb.tmp"
    staged: list[tuple[Path, Path]] = []
    try:
        tables = _build(con, tmp, run_id)
        staged = _stage_parquet(con, tmp, tables, parquet_dir, safe)
    except BaseException as exc:
        _discard([tmp, Path(f"{tmp}.wal"), *parquet_dir.glob(f".*.{safe}.parquet.tmp")])
        if _no_space(exc):
            raise PublishError(_no_space_message(out_dir, settings.published_db, exc)) from exc
        raise
    # The swap is the commit point of publishing; the Parquet renames follow (they need no space). A crash
    # between the two leaves new marts beside the previous Parquet files: the next run mends that.
    os.replace(tmp, settings.published_db)
    _fsync_dir(out_dir)
    for staged_file, final in staged:
        os.replace(staged_file, final)
    wanted = {final.name for _, final in staged}
    for stale in parquet_dir.glob("*.parquet"):
        if stale.name not in wanted:
            stale.unlink()
    _fsync_dir(parquet_dir)
    return PublishResult(settings.published_db, parquet_dir, tables)


def _build(con: duckdb.DuckDBPyConnection, tmp: Path, run_id: str) -> list[str]:
    """Write the new published file at `tmp`, checkpointed and detached. Returns its tables."""
    tables: list[str] = []
    con.execute(f"attach '{tmp}' as pub (storage_version '{STORAGE_VERSION}')")
    try:
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema if not exists pub.{schema}")
            for name in tables_in(con, schema, views=True):
                rel = f"{schema}.{_quote(name)}"
                # Views become tables: the published file must stand alone.
                con.execute(f"create table pub.{rel} as select * from {rel}")
                tables.append(f"{schema}.{name}")
        con.execute("create schema if not exists pub.ops")
        con.execute("create table pub.ops.runs as select * from ops.runs order by started_at")
        # The published copy records this run as successful: publishing is its last gated step.
        con.execute(
            f"update pub.ops.runs set status = 'success', finished_at = coalesce(finished_at, {UTC_NOW}) "
            "where run_id = ?",
            [run_id],
        )
        tables.append("ops.runs")
        con.execute("checkpoint pub")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a failed checkpoint may have invalidated it already
            con.execute("detach pub")
        raise
    con.execute("detach pub")
    return tables


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
