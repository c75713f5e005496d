"""Which ESP export files need reading: the manifest says what content was loaded, a stat cache says when
reading is unnecessary.

Every run used to read and sha256 every export file ever loaded (at 1M people, 4,680 files and 2.6 GB, most
of them daily contact snapshots) only to find them unchanged. `ops.esp_file_stats` remembers, per file, the
size, mtime and ctime (nanoseconds) it had when its content was last read and hashed. A file whose stat is
the remembered one, and whose remembered sha256 is the one the manifest holds, is skipped unread, as rsync
and git do. Anything else is read and hashed as before: a new or late file, a file rewritten in place (its
mtime or size moves; restoring an old mtime, as `rsync -t` or `cp -p` do, still moves its ctime), a file
copied or restored (new times, same hash: read once, then remembered), a manifest row written without the
cache (an older rapport) or dropped by a rollback.

The cache is not state: the manifest is. Losing it, or any row of it, costs one read of the files
concerned. A stat is remembered only when it is trustworthy: unchanged across the read, and older than
RACY_S before the read began (a file modified within the clock tick of its last stat could change again
with the same size and time; git calls such entries "racy" and re-checks them). Rows of files no longer under
the export root (deleted, renamed, moved away) are dropped when the root is read (`forget_missing`); a file
that exists keeps its row, due at the interval or not.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from rapport.extractors.esp_files import EspFile

RACY_S = 2.0  # coarser than any filesystem's timestamp granularity rapport meets (FAT: 2 s)


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class FileRead:
    """A file's bytes and sha256, and its stat when it may be remembered (None: read it again next time)."""

    data: bytes
    size: int
    sha256: str
    stat: FileStat | None


Manifest = dict[str, tuple[int, str]]  # path -> (size, sha256) of the content loaded
Stats = dict[str, tuple[FileStat, str]]  # path -> (stat, sha256) when that content was read


def load_stats(con: duckdb.DuckDBPyConnection) -> Stats:
    rows = con.execute("select path, size, mtime_ns, ctime_ns, sha256 from ops.esp_file_stats").fetchall()
    return {p: (FileStat(s, m, c), sha) for p, s, m, c, sha in rows}


def forget_missing(con: duckdb.DuckDBPyConnection, root: Path, stats: Stats) -> int:
    """Delete the cache rows (`stats`, paths relative to `root`) of files no longer under `root`; their number.

    Without this the cache only grew: every file ever exported kept a row after it was deleted or replaced
    by one of another name. Checked per row against the file system, not against the files due at this
    interval, so an earlier interval (a backfill) never drops the rows of later files."""
    gone = [p for p in stats if not (root / p).is_file()]
    if gone:
        con.execute("delete from ops.esp_file_stats where path in (select unnest(?::varchar[]))", [gone])
    return len(gone)


def unchanged_unread(f: EspFile, manifest: Manifest, stats: Stats) -> bool:
    """True when the file's stat and the manifest's content are what the cache remembers: skip it unread."""
    loaded, known = manifest.get(f.rel), stats.get(f.rel)
    if loaded is None or known is None or known[1] != loaded[1]:
        return False
    try:
        return FileStat.of(f.path.stat()) == known[0] and known[0].size == loaded[0]
    except OSError:  # gone meanwhile: reading it raises the error the caller already handles
        return False


def read_file(f: EspFile) -> FileRead:
    """Read and hash the file; keep its stat only when it did not move during the read and is not racy."""
    started = time.time_ns()
    before = FileStat.of(f.path.stat())
    data = f.path.read_bytes()
    after = FileStat.of(f.path.stat())
    stable = before == after and after.size == len(data)
    settled = max(after.mtime_ns, after.ctime_ns) < started - int(RACY_S * 1e9)
    return FileRead(data, len(data), hashlib.sha256(data).hexdigest(), after if stable and settled else None)


def record_stats(con: duckdb.DuckDBPyConnection, files: list[tuple[str, FileStat, str]]) -> None:
    """Upsert cache rows (path, stat, sha256) in one statement; inside the batch transaction for files landed."""
    if not files:
        return
    rows = pa.table(
        {
            "path": [p for p, _s, _h in files],
            "size": pa.array([s.size for _p, s, _h in files], pa.int64()),
            "mtime_ns": pa.array([s.mtime_ns for _p, s, _h in files], pa.int64()),
            "ctime_ns": pa.array([s.ctime_ns for _p, s, _h in files], pa.int64()),
            "sha256": [h for _p, _s, h in files],
        }
    )
    con.register("_stats_in", rows)
    try:
        con.execute(
            """insert into ops.esp_file_stats (path, size, mtime_ns, ctime_ns, sha256)
               select path, size, mtime_ns, ctime_ns, sha256 from _stats_in
               on conflict (path) do update set size = excluded.size, mtime_ns = excluded.mtime_ns,
                   ctime_ns = excluded.ctime_ns, sha256 = excluded.sha256"""
        )
    finally:
        with suppress(duckdb.Error):  # in an aborted transaction: keep its error
            con.unregister("_stats_in")
