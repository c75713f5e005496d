"""Where erasures are recorded (ops.erasures, ops.erasure_identifiers, ops.erasure_purges) and the key
their hashes are made with.

No clear identifier is ever stored: identifiers are `sha256(key|kind|value)` (rapport.privacy.match). The
key is secret, so a copy of these tables alone cannot be checked against a list of addresses. It comes
from `RAPPORT_ERASURE_KEY` when set, else from `{warehouse}/work/erasure.key` (created with mode 0600 by the
first `rapport forget`). The key's fingerprint (`key_id`) is stored beside the hashes: a run that finds
erasures made with another key fails instead of silently letting erased people back in.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import duckdb

from rapport.core.config import Settings
from rapport.core.warehouse import table_exists

KEY_ENV = "RAPPORT_ERASURE_KEY"

DDL = [
    "create schema if not exists ops",
    # one row per address given to `rapport forget` (status 'erased' or 'unmatched')
    """create table if not exists ops.erasures (
        erasure_id varchar not null, erased_at timestamp not null, email_hash varchar not null,
        key_id varchar not null, status varchar not null, customers bigint, records bigint,
        rows_removed json, rows_redacted json, primary key (erasure_id, email_hash))""",
    # what keeps erased people out: kind in email, phone, shop_customer, order, helpdesk_user, esp_contact
    """create table if not exists ops.erasure_identifiers (
        kind varchar not null, hash varchar not null, key_id varchar not null, erasure_id varchar,
        added_at timestamp not null, added_by varchar not null, primary key (kind, hash))""",
    # rows of erased people removed again by later runs (their sources still hold them)
    """create table if not exists ops.erasure_purges (
        run_id varchar not null, purged_at timestamp not null, "table" varchar not null,
        rows_removed bigint not null, rows_redacted bigint not null)""",
]
TABLES = ("erasures", "erasure_identifiers", "erasure_purges")


class ErasureKeyError(RuntimeError):
    """The key the recorded erasures were hashed with is not available."""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)


def key_path(settings: Settings) -> Path:
    return settings.work_db.parent / "erasure.key"


def key_id(key: str) -> str:
    return hashlib.sha256(f"rapport-erasure-key|{key}".encode()).hexdigest()[:16]


def load_key(settings: Settings, *, create: bool = False) -> str | None:
    """The erasure key: RAPPORT_ERASURE_KEY, else the key file (created when `create`), else None."""
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        return env
    path = key_path(settings)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile: use theirs
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


def has_identifiers(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any erasure must be enforced (cheap: the common case of no erasure costs one lookup)."""
    if not table_exists(con, "ops", "erasure_identifiers"):
        return False
    return con.execute("select count(*) from ops.erasure_identifiers").fetchall()[0][0] > 0


def stored_key_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    if not has_identifiers(con):
        return set()
    return {r[0] for r in con.execute("select distinct key_id from ops.erasure_identifiers").fetchall()}


def require_key(con: duckdb.DuckDBPyConnection, settings: Settings, *, create: bool = False) -> str:
    """The key, checked against the one the recorded erasures were made with."""
    key = load_key(settings, create=create)
    stored = stored_key_ids(con)
    if key is None:
        raise ErasureKeyError(
            f"ops.erasure_identifiers holds erased people, but the erasure key is missing (neither {KEY_ENV} nor "
            f"{key_path(settings)}): refusing to load data that could bring them back; restore the key"
        )
    if stored and stored != {key_id(key)}:
        raise ErasureKeyError(
            f"the erasure key in use (id {key_id(key)}) is not the one the recorded erasures were made with "
            f"({', '.join(sorted(stored))}): refusing to load data that could bring erased people back; "
            f"restore {KEY_ENV} or {key_path(settings)}"
        )
    return key
