"""Keeping erased people out of later runs: the sources still hold them, so every run removes them again
right after extraction, before the raw checks (called by rapport.pipeline.steps)."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from rapport.core.config import Settings
from rapport.core.progress import progress
from rapport.privacy.match import install
from rapport.privacy.purge import purge_raw
from rapport.privacy.store import has_identifiers, key_id, require_key


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def keep_erased(con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str) -> dict[str, int]:
    """Remove erased people from raw.* / quarantine.* after an extract (they are still in the sources).

    A no-op (one lookup) without erasures. Raises ErasureKeyError when erasures exist but their key is
    missing: loading on would bring the people back. Returns rows removed (and redacted) per table.
    """
    if not has_identifiers(con):
        return {}
    key = require_key(con, settings)
    install(con, key)
    con.begin()
    try:
        result = purge_raw(con, key_id=key_id(key), added_by=run_id)
        counts = {**result.redacted, **result.removed}
        if counts:
            now = _now()
            con.executemany(
                "insert into ops.erasure_purges values (?, ?, ?, ?, ?)",
                [(run_id, now, t, result.removed.get(t, 0), result.redacted.get(t, 0)) for t in sorted(counts)],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    if result.removed:
        progress(f"  kept {result.total_removed} rows of erased people out ({len(result.removed)} tables)")
    return {t: result.removed.get(t, 0) + result.redacted.get(t, 0) for t in counts}
