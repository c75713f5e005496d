"""Extractor state in the warehouse (watermarks, cursors), batch transactions, and the extraction log."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from rapport.extractors.landing import TableCounts, drop_scratch, utc_now

log = logging.getLogger(__name__)
T = TypeVar("T")

# Failpoint for crash tests (the SIGKILL tests set it; nothing else should): "<point>:<n>" makes the n-th
# batch transaction of this process stop at <point> ("before_commit" or "after_commit"), create the file
# named by FAILPOINT_FILE_ENV and sleep, so the test can kill it at a known place.
FAILPOINT_ENV = "RAPPORT_EXTRACT_FAILPOINT"
FAILPOINT_FILE_ENV = "RAPPORT_EXTRACT_FAILPOINT_FILE"
_batches = 0


def _failpoint(point: str) -> None:
    spec = os.environ.get(FAILPOINT_ENV)
    if not spec:
        return
    where, _, n = spec.partition(":")
    if where == point and _batches == int(n or 1):
        Path(os.environ[FAILPOINT_FILE_ENV]).write_text(f"{point}:{_batches}\n")
        time.sleep(3600)


@contextmanager
def batch_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One batch = one transaction: its rows, its rejects and its state commit together or not at all."""
    global _batches
    _batches += 1
    con.begin()
    try:
        yield
        _failpoint("before_commit")
        con.commit()
    except BaseException:
        with suppress(duckdb.Error):  # a failed commit may have ended the transaction already
            con.rollback()
        raise
    _failpoint("after_commit")


def get_state(con: duckdb.DuckDBPyConnection, source: str, key: str) -> str | None:
    rows = con.execute("select value from ops.extract_state where source = ? and key = ?", [source, key]).fetchall()
    return rows[0][0] if rows else None


def put_state(con: duckdb.DuckDBPyConnection, source: str, key: str, value: str, run_id: str) -> None:
    """Upsert a state value; an unchanged value is not rewritten, so a no-op rerun leaves the row identical.
    Every change is also recorded in ops.extract_state_history (rapport.extractors.rollback undoes runs)."""
    rows = con.execute(
        "select value, run_id, updated_at from ops.extract_state where source = ? and key = ?", [source, key]
    ).fetchall()
    old = rows[0] if rows else (None, None, None)
    if rows and old[0] == value:
        return
    con.execute(
        "insert into ops.extract_state_history (source, key, old_value, old_run_id, old_updated_at, new_value, "
        "run_id, changed_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [source, key, *old, value, run_id, utc_now()],
    )
    con.execute(
        """insert into ops.extract_state (source, key, value, run_id, updated_at) values (?, ?, ?, ?, ?)
           on conflict (source, key) do update
           set value = excluded.value, run_id = excluded.run_id, updated_at = excluded.updated_at""",
        [source, key, value, run_id, utc_now()],
    )


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Yield (item, is_last), reading one ahead: the last batch's transaction carries the final state."""
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


def write_extraction_log(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    source: str,
    tables: dict[str, TableCounts],
    started_at: datetime,
) -> None:
    """One row per (run, source table); a retried run (same run_id) replaces its rows. Called once at the end
    of every extraction (failed ones too), it also drops the per-batch scratch tables."""
    drop_scratch(con)
    with batch_transaction(con):
        for table, c in tables.items():
            con.execute(
                'delete from ops.extraction_log where run_id = ? and source = ? and "table" = ?',
                [run_id, source, table],
            )
            con.execute(
                "insert into ops.extraction_log values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    source,
                    table,
                    c.rows_read,
                    c.rows_landed,
                    c.rows_quarantined,
                    c.rows_duplicate,
                    started_at,
                    round(c.duration_s, 3),
                ],
            )
    for table, c in tables.items():
        log.info(
            "%s %s: read %d, landed %d, quarantined %d, duplicate %d in %.1f s",
            source,
            table,
            c.rows_read,
            c.rows_landed,
            c.rows_quarantined,
            c.rows_duplicate,
            c.duration_s,
        )


def log_failure(con: duckdb.DuckDBPyConnection, **kw) -> None:  # type: ignore[no-untyped-def]
    """Record what a failing extractor did before it failed, without masking its error."""
    try:
        write_extraction_log(con, **kw)
    except Exception:  # the connection may be what failed
        log.exception("could not write ops.extraction_log for a failed %s extraction", kw.get("source"))
