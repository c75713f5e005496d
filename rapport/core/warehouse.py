"""The working warehouse: one DuckDB file, one writer at a time.

DuckDB allows a single writing process per file. Tasks open the file, do their work and close it again
(dbt opens it itself in between). A second pipeline process that tries to write while a run holds the
file waits a bounded time for the lock and then fails with a message that says who holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from rapport.core.config import Settings

# The current time as a naive UTC timestamp, for the ops tables' stamps. `now()::timestamp` would be the
# session's time zone, i.e. the machine's: the raw loads' `_extracted_at` and dbt's stamps are UTC.
UTC_NOW = "cast(now() at time zone 'UTC' as timestamp)"


class WarehouseBusy(RuntimeError):
    pass


class RunInProgress(RuntimeError):
    """Another `rapport run`, `backfill` or `forget` holds the warehouse's run lock."""


@contextmanager
def run_lock(settings: Settings, *, what: str = "this command") -> Iterator[Path]:
    """The lock a whole run (`rapport run`, `backfill`, `forget`) holds on a warehouse; not waited for.

    RunInProgress when another process holds it. Yields the lock file's path.
    """
    path = settings.warehouse_dir / "work" / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInProgress(
                f"another rapport run is active on {settings.warehouse_dir} (lock {path}); "
                f"run {what} again when it has finished"
            ) from None
        try:
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def writer_lock(settings: Settings, *, wait_seconds: float = 30.0) -> Iterator[None]:
    """An advisory lock next to the working file, held while a task writes it.

    The OS drops a flock when its process dies (even by SIGKILL), so a crashed run leaves no stale lock.
    """
    lock_path = settings.work_db.parent / "writer.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise WarehouseBusy(
                        f"the warehouse {settings.work_db} is being written by {holder}; "
                        "only one rapport run may write it at a time"
                    ) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def tables_in(con: duckdb.DuckDBPyConnection, schema: str, *, views: bool = False) -> list[str]:
    """Names of the tables (and views, if asked) of `schema` in the connection's own database, sorted."""
    kinds = "('BASE TABLE', 'VIEW')" if views else "('BASE TABLE')"
    rows = con.execute(
        "select table_name from information_schema.tables where table_catalog = current_database() "
        f"and table_schema = ? and table_type in {kinds} order by table_name",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether `schema`.`table` (a table or a view) exists in the connection's own database."""
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_catalog = current_database() "
            "and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def connect(path: Path, settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only, config=settings.duckdb_config())


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-write connection to the working warehouse, under the writer lock."""
    with writer_lock(settings):
        con = connect(settings.work_db, settings)
        try:
            yield con
        finally:
            con.close()
