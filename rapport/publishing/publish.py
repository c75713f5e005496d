"""Blue/green publishing of the marts for BI tools.

The new file is built beside the published one, checkpointed and closed, then `os.replace`d over it:
readers that opened the old file keep their snapshot, new readers see the new file, and a run that fails
before the swap leaves the previous file byte-identical. The file is written in DuckDB's v1.4.0 storage
format because BI tools embed DuckDB 1.x, which cannot open 2.0-format files.

The Parquet copies are written (as hidden temp files) before the swap too, so a publish that fails for lack
of disk space changes nothing a reader sees, and leaves no temp file behind. Temp files of a publish that
was killed outright are removed by the next one.

Cost follows change (issue 16): when the previous publish left its state (rapport.publishing.publish_state)
and the files still match it, the new file starts as a byte copy of the published one and only the tables
that differ are written into it, by an exact keyed difference for the large marts a day changes in part
(rapport.publishing.publish_diff); only the changed tables' Parquet files are rewritten. The first publish,
any mismatch (no state, other files, other tables or columns, an unreadable file), a `rapport forget` since
the last publish and a copy grown past `MAX_GROWTH` times a fresh file write everything afresh.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from rapport.core.config import Settings
from rapport.core.warehouse import tables_in
from rapport.publishing import publish_state
from rapport.publishing.publish_diff import (
    Built,
    build_from_previous,
    columns,
    copy_runs,
    create_copy,
    detached_after,
    rel,
)

PUBLISHED_SCHEMAS = ("marts", "quarantine")
STORAGE_VERSION = "v1.4.0"
_DB_TEMP_GLOB = ".rapport.*.duckdb.tmp*"  # the new file and DuckDB's .wal beside it
_PARQUET_TEMP_GLOB = ".*.parquet.tmp"
# A copied file keeps deleted rows and dropped tables' free blocks: past this many times the size of the last
# file written afresh (plus some blocks: small files grow by whole blocks), the next publish writes afresh again
# (a choice of method: the rows are the same).
MAX_GROWTH = 1.5
GROWTH_SLACK = 32 << 20


class PublishError(RuntimeError):
    """Publishing failed before the swap: the previously published file and Parquet files are untouched."""


@dataclass(frozen=True)
class PublishResult:
    path: Path
    parquet_dir: Path
    tables: list[str]
    how: dict[str, str] = field(default_factory=dict)  # table -> written / kept / difference / rewritten


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
    marts_build = publish_state.marts_build(con)
    erasures = publish_state.erasures_digest(con)
    previous = _previous_state(settings, erasures)
    try:
        tables = [f"{schema}.{name}" for schema in PUBLISHED_SCHEMAS for name in tables_in(con, schema, views=True)]
        built = None
        if previous is not None:
            try:
                built = build_from_previous(con, settings.published_db, tmp, run_id, tables, previous, marts_build)
            except duckdb.Error as exc:  # e.g. a previous file whose catalog reads but whose data does not
                if _no_space(exc):
                    raise
                built = None
            if built is None:  # the previous file is no fit: write afresh
                _discard([tmp, Path(f"{tmp}.wal")])
        fresh = built is None
        if built is None:
            built = _build(con, tmp, run_id, tables)
        to_stage = [
            t
            for t in built.tables
            if fresh
            or t in built.changed
            or previous is None
            or not publish_state.parquet_current(previous, t, _parquet_path(parquet_dir, t))
        ]
        staged = _stage_parquet(con, tmp, to_stage, parquet_dir, safe)
    except BaseException as exc:
        _discard([tmp, Path(f"{tmp}.wal"), *parquet_dir.glob(f".*.{safe}.parquet.tmp")])
        if _no_space(exc):
            raise PublishError(_no_space_message(out_dir, settings.published_db, exc)) from exc
        raise
    # The swap is the commit point of publishing; the Parquet renames follow (they need no space). A crash
    # between the two leaves new marts beside the previous Parquet files: the state written last still names
    # the previous file, so the next run matches no state and writes everything afresh.
    os.replace(tmp, settings.published_db)
    _fsync_dir(out_dir)
    for staged_file, final in staged:
        os.replace(staged_file, final)
    wanted = {_parquet_path(parquet_dir, t).name for t in built.tables}
    for stale in parquet_dir.glob("*.parquet"):
        if stale.name not in wanted:
            stale.unlink()
    _fsync_dir(parquet_dir)
    # Published already: a state that cannot be written (a full disk) only makes the next publish write afresh.
    with contextlib.suppress(OSError):
        _save_state(con, settings, built, fresh, previous, marts_build, erasures)
    return PublishResult(settings.published_db, parquet_dir, built.tables, dict(built.how))


def _previous_state(settings: Settings, erasures: str) -> publish_state.PublishState | None:
    """The state of the published file when a copy of it may start the new one, else None."""
    state = publish_state.load(settings.published_dir, settings.published_db, STORAGE_VERSION)
    if state is None or state.erasures != erasures:  # an erasure since: its rows' bytes must not survive
        return None
    if (
        settings.published_db.stat().st_size > MAX_GROWTH * state.full_size + GROWTH_SLACK
    ):  # deleted rows and free blocks
        return None
    return state


def _save_state(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    built: Built,
    fresh: bool,
    previous: publish_state.PublishState | None,
    marts_build: list[str | None],
    erasures: str,
) -> None:
    parquet_dir = settings.published_dir / "parquet"
    cols = columns(con, con.execute("select current_database()").fetchone()[0], built.tables)  # type: ignore[index]
    size = settings.published_db.stat().st_size
    state = publish_state.PublishState(
        storage_version=STORAGE_VERSION,
        db=publish_state.identity(settings.published_db),
        marts_build=marts_build,
        erasures=erasures,
        full_size=size if fresh or previous is None else previous.full_size,
        tables={
            t: publish_state.TableState(
                columns=cols[t],
                parquet=publish_state.identity(_parquet_path(parquet_dir, t)),
                unique_key=built.unique_key.get(t),
            )
            for t in built.tables
        },
    )
    publish_state.save(settings.published_dir, state)
    _fsync_dir(settings.published_dir)


def _parquet_path(parquet_dir: Path, table: str) -> Path:
    return parquet_dir / f"{table}.parquet"


def _build(con: duckdb.DuckDBPyConnection, tmp: Path, run_id: str, tables: list[str]) -> Built:
    """Write the new published file at `tmp` afresh, checkpointed and detached."""
    con.execute(f"attach '{tmp}' as pub (storage_version '{STORAGE_VERSION}')")
    with detached_after(con):
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema if not exists pub.{schema}")
        for table in tables:
            create_copy(con, table)
        con.execute("create schema if not exists pub.ops")
        copy_runs(con, run_id)
        con.execute("checkpoint pub")
    everything = [*tables, "ops.runs"]
    return Built(everything, set(everything), how=dict.fromkeys(everything, "written"))


def _stage_parquet(
    con: duckdb.DuckDBPyConnection, db: Path, tables: list[str], parquet_dir: Path, tag: str
) -> list[tuple[Path, Path]]:
    """One hidden temp Parquet file per table of the new file `db`; returns (temp file, final path) pairs."""
    staged: list[tuple[Path, Path]] = []
    con.execute(f"attach '{db}' as pub (read_only)")
    with detached_after(con):
        for table in tables:
            tmp = parquet_dir / f".{table}.{tag}.parquet.tmp"
            staged.append((tmp, _parquet_path(parquet_dir, table)))
            con.execute(f"copy (select * from pub.{rel(table)}) to '{tmp}' (format parquet)")
    return staged


def remove_leftovers(out_dir: Path) -> list[Path]:
    """Remove the temp files of publishes that never finished (killed, or their machine died): each is a
    full, possibly half-written copy of the marts. Call only under the writer lock."""
    found = sorted([*out_dir.glob(_DB_TEMP_GLOB), *(out_dir / "parquet").glob(_PARQUET_TEMP_GLOB),
                    *out_dir.glob(f"{publish_state.STATE_NAME}.tmp")])  # fmt: skip
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
