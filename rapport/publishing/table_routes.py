"""Bring one table of the new published file (attached as `pub`, a copy of the previous one) to the working
warehouse's content by the cheapest exact route.

Routes: `unchanged` (the same rows: kept as it is, and so is its Parquet file), `patched` (few rows differ:
the difference is applied in place), `replaced` (written afresh, as a from-scratch publish does: many rows
differ, the columns or their types differ, or earlier patches left too many deleted rows in it), `created`
(new in this run).

How a table is compared depends on its size, as measured at 1M people (bench/RESULTS.md "Publish by
difference"):
- Under POSITIONAL_FROM_ROWS rows: as multisets, by one hash aggregate over both sides (every distinct row
  with its count in the working table minus its count in the published one; a row whose net count is not 0
  is "touched"). A patch deletes every published copy of each touched row and inserts every working copy,
  so duplicates come out exact (what `except all` both ways checks). NULLs match NULLs (group by and
  `is not distinct from` both treat them as equal).
- From POSITIONAL_FROM_ROWS rows on: row by row in storage order (a positional join: one streaming pass,
  no hash table), since the hash aggregate of a 5.8M-row table cost more than writing it. Equal at every
  position both have, with rows only at the end of the working table: those are inserted (an append-only
  table such as segment_history). Anything else: replaced. The published copy is written in the working
  table's order (publish sets preserve_insertion_order), so an append-only table stays comparable day after
  day; a table that dbt rebuilds in parallel comes back in another order and is replaced after its first
  HEAD_ROWS rows are compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

UNCHANGED, PATCHED, REPLACED, CREATED = "unchanged", "patched", "replaced", "created"

# Small tables (under POSITIONAL_FROM_ROWS rows) are compared as multisets, one hash aggregate of both sides,
# and patched when at most PATCH_MAX_SHARE of their rows are touched. Big ones are compared row by row in
# storage order: at 1M people the hash aggregate of customer_identities (5.8M rows) took longer than
# writing the table (7.8 against 6.8 s), the positional pass under half of it (bench/RESULTS.md "Publish by
# difference"); rows appended at the end (up to APPEND_MAX_SHARE of the table) are inserted, anything else
# rewrites the table. At 100k people the hash aggregate of customers (98,000 rows, 25 columns) cost more than
# its head check, hence the low bound.
POSITIONAL_FROM_ROWS = 10_000
PATCH_MAX_SHARE = 0.05
APPEND_MAX_SHARE = 0.25
HEAD_ROWS = 2_048
# A table whose stored rows (live + deleted but not yet reclaimed by DuckDB) exceed its live rows by more
# than this share is rewritten whole: DuckDB keeps deleted rows' space inside their row groups.
DELETED_MAX_SHARE = 0.2
_NET = "__rapport_net"
_DIFF = "__rapport_publish_diff"
_IN_W, _IN_P = "__rapport_in_work", "__rapport_in_published"


@dataclass
class Plan:
    """The route of one table, decided by comparing (`plan`) before anything is written (`apply`)."""

    table: str  # schema.name
    route: str  # one of UNCHANGED, PATCHED, REPLACED, CREATED
    src: str  # the working relation, quoted
    dst: str  # the published table, quoted
    cols: list[str]
    touched: int | None = None  # touched rows, when the comparison counted them
    diff: str | None = None  # a patch by difference: the temp table of touched rows (else rows are appended)


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


def plan(con: duckdb.DuckDBPyConnection, work_catalog: str, schema: str, name: str, *, exists: bool,
         tag: int) -> Plan:
    """Compare `schema.name` of the working warehouse with `pub.schema.name`; write nothing. `tag` names the
    temp table a patch by difference keeps until `apply` (drop it with `discard` if `apply` never runs)."""
    src = f"{quote(work_catalog)}.{quote(schema)}.{quote(name)}"
    dst = f"pub.{quote(schema)}.{quote(name)}"
    typed = columns(con, work_catalog, schema, name)
    p = Plan(f"{schema}.{name}", CREATED, src, dst, [c for c, _ in typed])
    if not exists:
        return p
    p.route = REPLACED
    if typed != columns(con, "pub", schema, name) or _bloated(con, schema, name, dst):
        return p
    rows = max(_count(con, src), _count(con, dst))
    if rows < POSITIONAL_FROM_ROWS:
        _by_difference(con, p, rows, f"{_DIFF}_{tag}")
    elif _is_base_table(con, work_catalog, schema, name):  # a view's row order is no stable thing to compare
        _by_position(con, p, rows)
    return p


def apply(con: duckdb.DuckDBPyConnection, p: Plan) -> None:
    """Write what `plan` decided. A replaced table must have been dropped already (publish drops them all and
    checkpoints first, so that the new tables reuse the old ones' blocks: the file does not grow by them)."""
    if p.route in (CREATED, REPLACED):
        # Views become tables: the published file must stand alone.
        con.execute(f"create table {p.dst} as select * from {p.src}")
    elif p.route == PATCHED and p.diff:
        match = " and ".join(f"t.{quote(c)} is not distinct from d.{quote(c)}" for c in p.cols)
        con.execute(f"delete from {p.dst} as t using {p.diff} as d where {match}")
        con.execute(f"insert into {p.dst} select t.* from {p.src} as t semi join {p.diff} as d on {match}")
        con.execute(f"drop table {p.diff}")
    elif p.route == PATCHED:
        names = ", ".join(f"w.{quote(c)}" for c in p.cols)
        con.execute(
            f"insert into {p.dst} select {names} from (select *, true as {_IN_W} from {p.src}) as w "
            f"positional join (select true as {_IN_P} from {p.dst}) as p where p.{_IN_P} is null"
        )


def discard(con: duckdb.DuckDBPyConnection, plans: list[Plan]) -> None:
    """Drop the temp tables of plans that were not applied."""
    for p in plans:
        if p.diff:
            con.execute(f"drop table if exists {p.diff}")


def _by_position(con: duckdb.DuckDBPyConnection, p: Plan, rows: int) -> None:
    """Compare row by row in storage order (one streaming pass, no hash table: a third to a half of writing
    the table at 1M people). Unchanged, or only rows appended at the end (dbt's incremental inserts, the
    segment history): keep, or insert the tail. Anything else: replace, which writes the rows in the working
    table's order again."""
    differ = " or ".join(f"w.{quote(c)} is distinct from p.{quote(c)}" for c in p.cols)
    # A table written in another order differs from its first rows on: seen at once, not after a full pass.
    head = con.execute(
        f"select count(*) from (select * from {p.src} limit {HEAD_ROWS}) as w "
        f"positional join (select * from {p.dst} limit {HEAD_ROWS}) as p where {differ}"
    ).fetchall()[0][0]
    if head:
        return
    differing, appended, cut = con.execute(
        f"select count(*) filter (where w.{_IN_W} and p.{_IN_P} and ({differ})), "
        f"count(*) filter (where p.{_IN_P} is null), count(*) filter (where w.{_IN_W} is null) "
        f"from (select *, true as {_IN_W} from {p.src}) as w "
        f"positional join (select *, true as {_IN_P} from {p.dst}) as p"
    ).fetchall()[0]
    p.touched = differing + appended + cut
    if differing or cut or appended > APPEND_MAX_SHARE * rows:
        return
    p.route = PATCHED if appended else UNCHANGED


def _by_difference(con: duckdb.DuckDBPyConnection, p: Plan, rows: int, temp: str) -> None:
    """Multiset difference by one hash aggregate of both sides; patch when few rows are touched."""
    limit = int(PATCH_MAX_SHARE * rows)
    names = ", ".join(quote(c) for c in p.cols)
    # Only up to limit + 1 touched rows are kept: more means a rewrite, whatever their number.
    con.execute(
        f"create or replace temp table {temp} as "
        f"select {names}, sum({_NET}) as {_NET} from ("
        f"select {names}, 1 as {_NET} from {p.src} union all select {names}, -1 as {_NET} from {p.dst}"
        f") group by all having sum({_NET}) <> 0 limit {limit + 1}"
    )
    p.touched = con.execute(f"select count(*) from {temp}").fetchall()[0][0]
    if p.touched == 0 or p.touched > limit:
        con.execute(f"drop table {temp}")
        p.route = UNCHANGED if p.touched == 0 else REPLACED
        return
    p.route, p.diff = PATCHED, temp


def _is_base_table(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = ? and table_name = ?",
        [catalog, schema, name],
    ).fetchall()[0][0])


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
