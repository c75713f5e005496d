"""What a warehouse looks like after a run, a crash or a failure: fingerprints, duplicates, locks, leftovers."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import duckdb

from rapport.extractors.schemas import RAW_TABLES

# Columns that record when, or by which run, a row was written: they differ between any two executions by
# design (dbt takes the identity `*_assigned_at` and `recorded_at` from run_started_at; run ids are per run).
# ops.runs is left out as a whole: one row per run, killed runs included, with ids and wall-clock times.
RUN_METADATA_COLUMNS = frozenset({
    "run_id", "first_assigned_run_id", "recorded_at", "rejected_at", "first_assigned_at", "last_assigned_at",
    "retired_at",
})  # fmt: skip
RAW_LOAD_METADATA = frozenset({"_run_id", "_extracted_at"})  # when and by which run a raw row was landed
PUBLISHED_SCHEMAS = ("marts", "quarantine")


def _connect(db: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(db), read_only=True)


def _columns(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> dict[str, list[tuple[str, str]]]:
    marks = ", ".join("?" * len(schemas))
    rows = con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        f"where table_catalog = current_database() and table_schema in ({marks}) "
        "order by table_schema, table_name, ordinal_position",
        list(schemas),
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, dtype in rows:
        out.setdefault(f"{schema}.{table}", []).append((column, dtype))
    return out


def _select(relation: str, columns: list[tuple[str, str]], leave_out: frozenset[str]) -> str:
    # Doubles rounded: parallel aggregation may add floats in another order from one execution to the next.
    exprs = [f'round("{c}", 9) as "{c}"' if t in ("DOUBLE", "FLOAT") else f'"{c}"'
             for c, t in columns if c not in leave_out]  # fmt: skip
    schema, name = relation.split(".", 1)
    return f'select {", ".join(exprs)} from "{schema}"."{name}"'


def _fingerprints(con, schemas: tuple[str, ...], leave_out: frozenset[str]) -> dict[str, dict[str, Any]]:
    """Per relation: its compared columns, row count and an order-independent hash of all its rows (a sum of
    row hashes, so a duplicated row changes it as much as a changed one)."""
    out = {}
    for relation, columns in _columns(con, schemas).items():
        rows = _select(relation, columns, leave_out)
        count, total = con.execute(
            f"select count(*), coalesce(sum(hash(r)::hugeint), 0)::varchar from ({rows}) r"
        ).fetchone()
        out[relation] = {"columns": [c for c, _ in columns if c not in leave_out], "rows": count, "hash": total}
    return out


def published_fingerprints(db: Path) -> dict[str, dict[str, Any]]:
    """Every published mart and quarantine table (ops.runs left out, see RUN_METADATA_COLUMNS)."""
    con = _connect(db)
    try:
        return _fingerprints(con, PUBLISHED_SCHEMAS, RUN_METADATA_COLUMNS)
    finally:
        con.close()


def published_runs(db: Path) -> list[tuple[str, str, str | None]]:
    """(run_id, status, error) of every run in the published ops.runs, oldest first."""
    con = _connect(db)
    try:
        return con.execute("select run_id, status, error from ops.runs order by started_at").fetchall()
    finally:
        con.close()


def raw_fingerprints(work_db: Path) -> dict[str, dict[str, Any]]:
    """Every raw table of the working warehouse, without the load metadata (`_run_id`, `_extracted_at`)."""
    con = _connect(work_db)
    try:
        return _fingerprints(con, ("raw",), RAW_LOAD_METADATA)
    finally:
        con.close()


def raw_duplicates(work_db: Path) -> dict[str, int]:
    """raw table -> number of natural keys (extractors/schemas.py) landed more than once; only tables with any."""
    con = _connect(work_db)
    try:
        present = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'").fetchall()}  # fmt: skip
        out = {}
        for table, (_ddl, key) in RAW_TABLES.items():
            if table not in present:
                continue
            cols = ", ".join(f'"{k}"' for k in key)
            n = con.execute(
                f"select count(*) from (select {cols} from raw.{table} group by all having count(*) > 1)"
            ).fetchone()[0]
            if n:
                out[table] = n
        return out
    finally:
        con.close()


def differences(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Relations whose fingerprint differs (or that only one side has), for an assertion message."""
    out: dict[str, Any] = {}
    for rel in sorted(set(expected) | set(actual)):
        if expected.get(rel) != actual.get(rel):
            e, a = expected.get(rel), actual.get(rel)
            out[rel] = {"expected": e and {"rows": e["rows"], "hash": e["hash"]},
                        "actual": a and {"rows": a["rows"], "hash": a["hash"]}}  # fmt: skip
            if e and a and e["columns"] != a["columns"]:
                out[rel]["columns"] = {"expected": e["columns"], "actual": a["columns"]}
    return out


def lock_holders(path: Path) -> list[int]:
    """Pids holding a flock on `path`, from /proc/locks: looking never takes the lock (a running pipeline is
    not disturbed). A missing file has no holder."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return []
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 fe:00:2146354 0 EOF" ("->" marks a waiter, not a holder)
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            holders.append(int(fields[4]))
    return holders


def lock_is_free(path: Path) -> bool:
    """Whether nobody holds a flock on `path`, checked twice: in /proc/locks, and by taking it for an instant."""
    if lock_holders(path):
        return False
    if not path.exists():
        return True
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
    return True


def held_locks(warehouse: Path) -> list[str]:
    """rapport's locks on this warehouse that someone still holds: the run lock and the writer lock."""
    work = warehouse / "work"
    return [name for name in ("run.lock", "writer.lock") if not lock_is_free(work / name)]


def temp_files(*dirs: Path) -> list[str]:
    """Files a writer left half-done: the `*.tmp` names rapport's atomic writers use (and DuckDB WALs of them)."""
    found = []
    for d in dirs:
        if d.exists():
            found += [str(p.relative_to(d.parent)) for p in d.rglob("*") if p.is_file() and ".tmp" in p.name]
    return sorted(found)


def fill_up(path: Path, leave_bytes: int) -> Path:
    """Fill the file system of `path` until only `leave_bytes` are free; returns the filler file."""
    filler = path / "filler.bin"
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as fh:
        remaining = max(0, free - leave_bytes)
        while remaining > 0:
            chunk = min(remaining, 1 << 20)
            fh.write(b"\0" * chunk)
            remaining -= chunk
    return filler
