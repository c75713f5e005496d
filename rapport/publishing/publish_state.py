"""What the last successful publish left in the published directory, so the next one can start from it.

`.rapport.publish.json` beside the published file is written last, after the swap and the Parquet renames.
It names the published file and each Parquet file by identity (inode, size, modification time): a state that
does not match the files on disk (a publish killed between the swap and the Parquet renames, files copied in
by hand, a restored backup) is no state, and the next publish writes everything afresh. It also keeps, per
table, the columns and whether its key was unique (the condition of an exact keyed difference,
rapport.publishing.publish_diff), the marts build it published (rapport.transform.build_state) and the erasure
records it saw (any erasure since forces a fresh file: a copied file keeps the bytes of deleted rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from rapport.core.warehouse import table_exists

STATE_NAME = ".rapport.publish.json"
STATE_VERSION = 1
_ERASURE_TABLES = ("erasures", "erasure_identifiers", "erasure_purges")


@dataclass
class TableState:
    columns: list[list[str]]  # [name, type] in order
    parquet: list[int]  # identity of its Parquet file
    unique_key: bool | None = None  # None: not checked


@dataclass
class PublishState:
    storage_version: str
    db: list[int]  # identity of the published file
    marts_build: list[str | None]  # build_state's (fingerprint, run) of the marts it holds
    erasures: str  # digest of the erasure records
    full_size: int  # size of the last file written afresh (bounds the growth of copies)
    tables: dict[str, TableState] = field(default_factory=dict)
    version: int = STATE_VERSION


def identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def load(out_dir: Path, published_db: Path, storage_version: str) -> PublishState | None:
    """The state of the file published now, or None when there is none or it does not match the files."""
    try:
        raw: dict[str, Any] = json.loads((out_dir / STATE_NAME).read_text())
        if raw.get("version") != STATE_VERSION:
            return None
        tables = {name: TableState(**t) for name, t in raw.pop("tables").items()}
        state = PublishState(**raw, tables=tables)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    try:
        if state.storage_version != storage_version or identity(published_db) != state.db:
            return None
    except OSError:
        return None
    return state


def parquet_current(state: PublishState, table: str, path: Path) -> bool:
    """Whether `path` is the Parquet file the state's publish wrote for `table` (not one from before it)."""
    try:
        return table in state.tables and identity(path) == state.tables[table].parquet
    except OSError:
        return False


def save(out_dir: Path, state: PublishState) -> None:
    tmp = out_dir / f"{STATE_NAME}.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=1))
    os.replace(tmp, out_dir / STATE_NAME)


def forget_state(out_dir: Path) -> None:
    """Before a file is published without a state (so the old state can never describe the new file)."""
    with contextlib.suppress(FileNotFoundError):
        (out_dir / STATE_NAME).unlink()


def erasures_digest(con: duckdb.DuckDBPyConnection) -> str:
    """Digest of every erasure record (few rows): any `rapport forget` since changes it."""
    h = hashlib.sha256()
    for name in _ERASURE_TABLES:
        if table_exists(con, "ops", name):
            rows = con.execute(f"select t::varchar as r from ops.{name} as t order by r").fetchall()
            h.update(json.dumps([name, [r[0] for r in rows]]).encode())
    return h.hexdigest()


def marts_build(con: duckdb.DuckDBPyConnection) -> list[str | None]:
    """The marts build the working warehouse holds, as rapport.transform.build_state recorded it: any dbt
    build clears it first, so an equal, non-empty value means the same marts."""
    from rapport.transform import build_state

    return [build_state.recorded(con, "marts"), build_state.recorded_run(con, "marts")]
