"""Schema drift: what a source may add and what it must not drop.

A column the contract (shared/contracts/sources.md) and the landing layout do not name is *kept*: it lands
in the raw row's `_extra` JSON (orders tables, CSV exports, helpdesk items, event lines alike).

A column without which no record can be landed is *required*: the layout's `not null` columns and
`coerce.EXTRA_REQUIRED` (natural keys, `updated_at`, an event's type and time), apart from those a file's
name supplies. When a source loses one, every record would be quarantined (or, for a SQL table, the read
would fail), so the extraction stops with `SchemaDriftError` naming the source, the table or file and the
column, before the batch lands: the run stops before transformation and a rerun, once the source is
fixed, reads the same data again. A missing optional column only warns; its values land as NULL, and the
raw checks judge whether that matters.

Tabular sources (SQL tables, CSV headers) have a schema to check. JSON sources (helpdesk items, event
lines) do not: one record without a required field is a malformed record (quarantined), and the field
counts as dropped by the source when no record of a whole page or file carries it (`check_json_drift`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import duckdb

from rapport.extractors.coerce import columns
from rapport.extractors.errors import SchemaDriftError

log = logging.getLogger(__name__)

# A page or file of fewer object records than this says too little to tell drift from a malformed record.
MIN_DRIFT_RECORDS = 2


def required_columns(table: str, supplied: Iterable[str] = ()) -> list[str]:
    """The columns of raw.<table> every source record must carry (`supplied`: filled in by the extractor)."""
    skip = set(supplied)
    return [c.name for c in columns(table) if c.required and c.name not in skip]


def check_columns(source: str, where: str, table: str, have: Iterable[str], supplied: Iterable[str] = ()) -> None:
    """Raise SchemaDriftError when `have` (a source table's or file's columns) lacks a required column;
    log a warning for each missing optional one."""
    have = set(have)
    supplied = set(supplied)
    missing = [c for c in required_columns(table, supplied) if c not in have]
    if missing:
        names = ", ".join(missing)
        raise SchemaDriftError(
            f"{source}: {where} has no column {names} (required by the {source} contract for {table}); "
            f"the run stops before transformation: fix the source or its mapping, then rerun"
        )
    optional = [c.name for c in columns(table) if c.name not in have and c.name not in supplied]
    if optional:
        log.warning("%s: %s has no column %s; it lands as NULL", source, where, ", ".join(optional))


def check_json_drift(con: duckdb.DuckDBPyConnection, source: str, table: str, what: str) -> None:
    """After a `merge_batch` whose typed query had `group_sql`, inside the batch's transaction: raise
    SchemaDriftError when a required field is absent from every JSON object record of a page or file (with
    at least MIN_DRIFT_RECORDS of them). Raising rolls the batch back, so its state does not move either."""
    required = required_columns(table)
    counts = ", ".join(f"count(*) filter (where list_contains(_miss, '{c}'))" for c in required)
    rows = con.execute(
        f"select _grp, count(*), {counts} from _typed where _miss is not null group by _grp "
        f"having count(*) >= {MIN_DRIFT_RECORDS} order by _grp"
    ).fetchall()
    for grp, n, *missing in rows:
        gone = [c for c, m in zip(required, missing, strict=True) if m == n]
        if gone:
            raise SchemaDriftError(
                f"{source}: {what} {grp}: none of its {n} records has the field {', '.join(gone)} (required by "
                f"the {source} contract for {table}); the run stops before transformation"
            )
