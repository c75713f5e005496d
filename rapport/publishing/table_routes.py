"""Bring one table of the new published file (attached as `pub`, a copy of the previous one) to the working
warehouse's content by the cheapest exact route.

Routes: `unchanged` (the same multiset of rows: kept as it is, and so is its Parquet file), `patched` (few
rows differ: the old-only rows are deleted and the new-only ones inserted), `replaced` (many rows differ, the
columns or their types differ, or earlier patches left too many deleted rows in it: written afresh, as a
from-scratch publish does), `created` (new in this run).

The difference is one hash aggregate over both tables: every distinct row with its count in the working
table minus its count in the published one. A row whose net count is not 0 is "touched"; a patch deletes
every published copy of each touched row and inserts every working copy of it, so duplicates come out
exact (multiset equality, as `except all` both ways would check). Rows that are not touched already occur as
often on both sides. NULLs match NULLs (group by and `is not distinct from` both treat them as equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

UNCHANGED, PATCHED, REPLACED, CREATED = "unchanged", "patched", "replaced", "created"

# A patch is chosen when at most this share of the table's rows is touched. Measured at 1M people
# (bench/RESULTS.md "Publish by difference"): patching customer_identities' 0.3% costs a fraction of writing
# it; beyond a few per cent the delete + insert + the rows left behind approach a rewrite's cost.
PATCH_MAX_SHARE = 0.05
# A table whose stored rows (live + deleted but not yet reclaimed by DuckDB) exceed its live rows by more
# than this share is rewritten whole: DuckDB keeps deleted rows' space inside their row groups.
DELETED_MAX_SHARE = 0.2
# Tables of at least SAMPLE_FROM_ROWS rows are first probed with SAMPLE_ROWS of their working rows.
SAMPLE_FROM_ROWS = 100_000
SAMPLE_ROWS = 2_000
_NET = "__rapport_net"
_SAMPLE = "__rapport_publish_sample"
_DIFF = "__rapport_publish_diff"


@dataclass(frozen=True)
class Route:
    table: str  # schema.name
    route: str  # one of UNCHANGED, PATCHED, REPLACED, CREATED
    touched: int | None = None  # distinct touched rows, when the difference was computed


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def columns(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, name: str) -> list[tuple[str, str]]:
    """(name, type) of a table's or view's columns, in order."""
    return [
        (c, t)
        for c, t in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = ? and table_schema = ? and table_name = ? order by ordinal_position",
            [catalog, schema, name],
        ).fetchall()
    ]


def bring(con: duckdb.DuckDBPyConnection, work_catalog: str, schema: str, name: str, *, exists: bool) -> Route:
    """Make `pub.schema.name` hold the rows of `schema.name` of the working warehouse; return the route taken."""
    table = f"{schema}.{name}"
    src = f"{quote(work_catalog)}.{quote(schema)}.{quote(name)}"
    dst = f"pub.{quote(schema)}.{quote(name)}"
    if not exists:
        _create(con, src, dst)
        return Route(table, CREATED)
    cols = columns(con, work_catalog, schema, name)
    if cols != columns(con, "pub", schema, name) or _bloated(con, schema, name, dst):
        con.execute(f"drop table {dst}")
        _create(con, src, dst)
        return Route(table, REPLACED)
    rows = max(_count(con, src), _count(con, dst))
    limit = int(PATCH_MAX_SHARE * rows)
    names = ", ".join(quote(c) for c, _ in cols)
    match = " and ".join(f"t.{quote(c)} is not distinct from d.{quote(c)}" for c, _ in cols)
    if rows >= SAMPLE_FROM_ROWS and _sample_mostly_changed(con, src, dst, match):
        con.execute(f"drop table {dst}")
        _create(con, src, dst)
        return Route(table, REPLACED)
    # Only up to limit + 1 touched rows are kept: more means a rewrite, whatever their number.
    con.execute(
        f"create or replace temp table {_DIFF} as "
        f"select {names}, sum({_NET}) as {_NET} from ("
        f"select {names}, 1 as {_NET} from {src} union all select {names}, -1 as {_NET} from {dst}"
        f") group by all having sum({_NET}) <> 0 limit {limit + 1}"
    )
    try:
        touched = con.execute(f"select count(*) from {_DIFF}").fetchall()[0][0]
        if touched == 0:
            return Route(table, UNCHANGED, 0)
        if touched > limit:
            con.execute(f"drop table {dst}")
            _create(con, src, dst)
            return Route(table, REPLACED, touched)
        con.execute(f"delete from {dst} as t using {_DIFF} as d where {match}")
        con.execute(f"insert into {dst} select t.* from {src} as t semi join {_DIFF} as d on {match}")
        return Route(table, PATCHED, touched)
    finally:
        con.execute(f"drop table if exists {_DIFF}")


def _sample_mostly_changed(con: duckdb.DuckDBPyConnection, src: str, dst: str, match: str) -> bool:
    """Whether more than 2 x PATCH_MAX_SHARE of a sample of the working rows have no equal published row:
    then the table is replaced without computing the whole difference (a table where every row changes,
    e.g. with the day's as-of date, would cost a full hash aggregate first). Only ever chooses the route
    that is exact anyway, so a sample is enough."""
    con.execute(f"create or replace temp table {_SAMPLE} as select * from {src} using sample {SAMPLE_ROWS} rows")
    try:
        sampled, found = con.execute(
            f"select (select count(*) from {_SAMPLE}), "
            f"(select count(*) from {_SAMPLE} as d where exists (select 1 from {dst} as t where {match}))"
        ).fetchall()[0]
    finally:
        con.execute(f"drop table if exists {_SAMPLE}")
    return sampled > 0 and (sampled - found) > 2 * PATCH_MAX_SHARE * sampled


def _create(con: duckdb.DuckDBPyConnection, src: str, dst: str) -> None:
    # Views become tables: the published file must stand alone.
    con.execute(f"create table {dst} as select * from {src}")


def _count(con: duckdb.DuckDBPyConnection, rel: str) -> int:
    return int(con.execute(f"select count(*) from {rel}").fetchall()[0][0])


def _bloated(con: duckdb.DuckDBPyConnection, schema: str, name: str, dst: str) -> bool:
    """Whether earlier patches left more deleted rows in the table than DELETED_MAX_SHARE of its live rows
    (duckdb_tables' estimated_size counts the stored rows, deleted ones included)."""
    stored = con.execute(
        "select estimated_size from duckdb_tables() where database_name = 'pub' and schema_name = ? "
        "and table_name = ?",
        [schema, name],
    ).fetchall()[0][0]
    live = _count(con, dst)
    return stored > live * (1 + DELETED_MAX_SHARE)
