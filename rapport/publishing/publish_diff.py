"""Publishing by difference: the new file starts as a byte copy of the published one and only what changed is
written into it (rapport.publishing.publish calls this when the previous publish left a matching state).

Per table, decided exactly:
- the marts, when the working warehouse holds the very marts build the previous file was published from
  (rapport.transform.build_state's fingerprint and run, which any dbt build clears first): kept;
- a table in `DATED` (a log a build rewrites by whole dates, stamping each row it writes: segment_history,
  which grows by a day's changes every day): only the dates whose rows can differ from the copy's, found by
  their row count and their first and last stamp on each side, are replaced (their old rows deleted, the
  working relation's inserted); the other dates are not read (`_dated_difference`);
- a table with a key in `KEYS` (the large marts a day changes in part): an exact difference on the key. One
  full outer join of the working relation with the copy lists every old row without an identical partner
  (by its rowid) and every new row without one; those old rows are deleted and those new rows inserted. That
  is the new relation exactly when the copy's key was unique (checked, and kept in the state) and the row
  count comes out equal to the working relation's (a repeated key in the working relation would leave it
  short: the table is then written afresh). Floats are compared with their sign bit (-0.0 is not 0.0);
- any other table of at most `SMALL_ROWS` rows: kept when its row count and its rows (`except all`, the
  sign bit of floats included) are the working relation's;
- anything else, and `ops.runs` always: written afresh (drop, create as select).

Rows a difference inserts sit after the kept ones: the row order of a table differs from a fresh publish's
(row order is not part of the published contract; a fresh publish's order is not stable either).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from rapport.core.warehouse import UTC_NOW
from rapport.publishing.publish_state import PublishState

KEYS: dict[str, tuple[str, ...]] = {
    "marts.customer_identities": ("source", "source_id"),
    "marts.customers": ("customer_id",),
    "marts.segment_history": ("as_of_date", "customer_id"),
}
# Logs written by whole dates (issue 16): table -> (date column, written-at column). Every build that writes a
# date deletes all its rows and inserts the new ones, each stamped with that build's time (macros
# segment_history.sql: the strategy's delete of the replaced dates, the model's recorded_at = now()).
DATED: dict[str, tuple[str, str]] = {"marts.segment_history": ("as_of_date", "recorded_at")}
SMALL_ROWS = 50_000
# A difference touching more than this share of the rows is dearer than a fresh copy (a choice of method,
# not of result: both give the working relation's rows).
REWRITE_SHARE = 0.25
_FLOATS = ("FLOAT", "DOUBLE", "REAL")


@dataclass
class Built:
    tables: list[str]  # "schema.name", in publishing order, ops.runs last
    changed: set[str]  # tables whose rows differ from the previous file's (their Parquet files are rewritten)
    unique_key: dict[str, bool | None] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)  # table -> kept / difference / rewritten (for logs, tests)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rel(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{schema}.{quote(name)}"


def create_copy(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """`table` of the working warehouse as a table of `pub` (views become tables: the file stands alone)."""
    con.execute(f"create table pub.{rel(table)} as select * from {rel(table)}")


def copy_runs(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute("create table pub.ops.runs as select * from ops.runs order by started_at")
    # The published copy records this run as successful: publishing is its last gated step.
    con.execute(
        f"update pub.ops.runs set status = 'success', finished_at = coalesce(finished_at, {UTC_NOW}) where run_id = ?",
        [run_id],
    )


def columns(con: duckdb.DuckDBPyConnection, database: str, tables: list[str]) -> dict[str, list[list[str]]]:
    rows = con.execute(
        "select schema_name || '.' || table_name, column_name, data_type from duckdb_columns() "
        "where database_name = ? order by schema_name, table_name, column_index",
        [database],
    ).fetchall()
    found: dict[str, list[list[str]]] = {}
    for table, column, dtype in rows:
        found.setdefault(table, []).append([column, dtype])
    return {t: found.get(t, []) for t in tables}


def build_from_previous(
    con: duckdb.DuckDBPyConnection,
    previous: Path,
    tmp: Path,
    run_id: str,
    tables: list[str],
    state: PublishState,
    marts_build: list[str | None],
) -> Built | None:
    """Write the new published file at `tmp` from a copy of `previous`, checkpointed and detached. None when the
    copy is no fit (it does not open, or its tables or columns are not the new ones): the caller writes afresh."""
    shutil.copyfile(previous, tmp)
    try:
        con.execute(f"attach '{tmp}' as pub")
    except duckdb.Error:
        return None
    with detached_after(con):
        built = _fill(con, run_id, tables, state, marts_build)
        if built is not None:
            con.execute("checkpoint pub")
    return built


@contextlib.contextmanager
def detached_after(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Detach the attached `pub` after the block, also when it fails (then quietly: a failed checkpoint may
    have invalidated it already, and the block's error is the one to raise)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("detach pub")
        raise
    con.execute("detach pub")


def _fill(
    con: duckdb.DuckDBPyConnection, run_id: str, tables: list[str], state: PublishState, marts_build: list[str | None]
) -> Built | None:
    everything = [*tables, "ops.runs"]
    try:
        in_copy = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'pub'"
            ).fetchall()
        }
        old_columns = columns(con, "pub", everything)
    except duckdb.Error:  # unreadable catalog: not a file to start from
        return None
    new_columns = columns(con, con.execute("select current_database()").fetchone()[0], everything)  # type: ignore[index]
    if in_copy != set(everything) or old_columns != new_columns:
        return None
    if any(state.tables.get(t) is None or state.tables[t].columns != new_columns[t] for t in everything):
        return None
    same_marts = marts_build[0] is not None and marts_build == state.marts_build
    built = Built(everything, set())
    for table in tables:
        previous_unique = state.tables[table].unique_key
        names = {c for c, _ in new_columns[table]}
        if same_marts and table.startswith("marts."):
            built.how[table], built.unique_key[table] = "kept", previous_unique
        elif table in DATED and set(DATED[table]) <= names:
            _dated_difference(con, built, table, DATED[table], new_columns[table], previous_unique)
        elif set(KEYS.get(table, ("",))) <= names:
            _difference(con, built, table, KEYS[table], new_columns[table], previous_unique)
        elif _small_and_equal(con, table, new_columns[table]):
            built.how[table], built.unique_key[table] = "kept", previous_unique
        else:
            _rewrite(con, built, table)
    con.execute("drop table pub.ops.runs")
    copy_runs(con, run_id)
    built.changed.add("ops.runs")
    built.how["ops.runs"] = "rewritten"
    return built


def _rewrite(con: duckdb.DuckDBPyConnection, built: Built, table: str) -> None:
    con.execute(f"drop table pub.{rel(table)}")
    create_copy(con, table)
    built.changed.add(table)
    built.how[table], built.unique_key[table] = "rewritten", None


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return con.execute(f"select count(*) from {relation}").fetchone()[0]  # type: ignore[index]


def _distinct(left: str, right: str, cols: list[list[str]]) -> str:
    """SQL true when the rows `left` and `right` differ in any column (floats: also in their sign bit)."""
    parts = []
    for name, dtype in cols:
        a, b = f"{left}.{quote(name)}", f"{right}.{quote(name)}"
        parts.append(f"{a} is distinct from {b}")
        if dtype in _FLOATS:
            parts.append(f"signbit({a}) is distinct from signbit({b})")
    return " or ".join(parts) or "false"


def _key_unique(con: duckdb.DuckDBPyConnection, relation: str, key: tuple[str, ...]) -> bool:
    """No two rows of `relation` share a key without nulls (rows with a null in the key never match in the
    difference's join, so they are deleted or inserted one by one)."""
    k = ", ".join(quote(c) for c in key)
    not_null = " and ".join(f"{quote(c)} is not null" for c in key)
    dupes = con.execute(
        f"select count(*) from (select {k} from {relation} where {not_null} group by {k} having count(*) > 1)"
    ).fetchone()[0]  # type: ignore[index]
    return dupes == 0


def _difference(
    con: duckdb.DuckDBPyConnection,
    built: Built,
    table: str,
    key: tuple[str, ...],
    cols: list[list[str]],
    previous_unique: bool | None,
) -> None:
    old = f"pub.{rel(table)}"
    if previous_unique is None:
        previous_unique = _key_unique(con, old, key)
    if not previous_unique:
        _rewrite(con, built, table)
        return
    names = ", ".join(quote(c) for c, _ in cols)
    on = " and ".join(f"n.{quote(c)} = o.{quote(c)}" for c in key)
    # Every old row without an identical partner (its rowid) and every new row without one (its values).
    con.execute(
        f"""create or replace temp table pubdiff_rows as
            select o.rowid as pubdiff_old_rowid, n.*
            from (select *, true as pubdiff_new from {rel(table)}) as n
            full outer join {old} as o on {on}
            where n.pubdiff_new is null or o.rowid is null or {_distinct("n", "o", cols)}"""
    )
    try:
        changed = _count(con, "pubdiff_rows")
        new_rows = _count(con, rel(table))
        if changed > REWRITE_SHARE * max(new_rows, 1):
            _rewrite(con, built, table)
            return
        if changed:
            con.execute(
                f"delete from {old} where rowid in "
                "(select pubdiff_old_rowid from pubdiff_rows where pubdiff_old_rowid is not null)"
            )
            con.execute(f"insert into {old} ({names}) select {names} from pubdiff_rows where pubdiff_new")
        if _count(con, old) != new_rows:  # the working relation repeats a key: the difference is not exact
            _rewrite(con, built, table)
            return
        inserted = "(select * from pubdiff_rows where pubdiff_new)"
        built.unique_key[table] = _key_unique(con, inserted, key)
        built.how[table] = "difference" if changed else "kept"
        if changed:
            built.changed.add(table)
    finally:
        con.execute("drop table if exists pubdiff_rows")


def _date_signatures(relation: str, date: str, written: str) -> str:
    return (
        f"select {date} as as_of, count(*) as n, min({written}) as first_written, max({written}) as last_written "
        f"from {relation} group by {date}"
    )


def _dated_difference(
    con: duckdb.DuckDBPyConnection,
    built: Built,
    table: str,
    dated: tuple[str, str],
    cols: list[list[str]],
    previous_unique: bool | None,
) -> None:
    """Replace in the copy the rows of the dates whose rows can differ from the working relation's.

    A build writes a date whole: it deletes the date's rows and inserts the new ones, all stamped with its one
    time (`dated`'s written-at column), and no two builds share a time; rows leave otherwise only through
    `rapport forget` (after which the file is written afresh) or a Spark build, which writes every row back as
    it was. So a date's rows are those of the last build that wrote it, and two versions of a date with the
    same row count and the same first and last stamp are the same rows: per date, those three are compared
    (a pass over two columns of each side, no join of the rows), and only the dates where they differ are
    deleted from the copy and inserted from the working relation. Their rows are written whole, so the result
    is the working relation whatever its key holds; the row counts are checked as in `_difference`.
    """
    old = f"pub.{rel(table)}"
    date, written = (quote(c) for c in dated)
    date_type = dict((c, t) for c, t in cols)[dated[0]]
    differing = con.execute(
        f"""with new_dates as ({_date_signatures(rel(table), date, written)}),
            old_dates as ({_date_signatures(old, date, written)})
            select coalesce(n.as_of, o.as_of) as as_of, coalesce(n.n, 0) + coalesce(o.n, 0) as touched_rows
            from new_dates as n
            full outer join old_dates as o on n.as_of is not distinct from o.as_of
            where n.n is distinct from o.n
                or n.first_written is distinct from o.first_written
                or n.last_written is distinct from o.last_written
            order by as_of"""
    ).fetchall()
    new_rows = _count(con, rel(table))
    if not differing:
        if _count(con, old) != new_rows:  # cannot happen when every date's count agrees; checked all the same
            _rewrite(con, built, table)
            return
        built.how[table], built.unique_key[table] = "kept", previous_unique
        return
    if sum(n for _, n in differing) > REWRITE_SHARE * max(new_rows, 1):
        _rewrite(con, built, table)
        return
    listed = [d for d, _ in differing if d is not None]
    literals = ", ".join(f"cast('{d}' as {date_type})" for d in listed)
    parts = [f"{date} in ({literals})"] if listed else []
    if len(listed) < len(differing):  # a null date
        parts.append(f"{date} is null")
    # literals: the scans skip the row groups of every other date (their zone maps)
    where = " or ".join(parts)
    names = ", ".join(quote(c) for c, _ in cols)
    con.execute(f"delete from {old} where {where}")
    con.execute(f"insert into {old} ({names}) select {names} from {rel(table)} where {where}")
    if _count(con, old) != new_rows:
        _rewrite(con, built, table)
        return
    key = KEYS.get(table)
    # the copy's key stays unique when it was and the inserted dates' rows are (no date's rows meet another's)
    built.unique_key[table] = (
        _key_unique(con, f"(select * from {rel(table)} where {where})", key) if key and previous_unique else None
    )
    built.how[table] = "difference by date"
    built.changed.add(table)


def _small_and_equal(con: duckdb.DuckDBPyConnection, table: str, cols: list[list[str]]) -> bool:
    new_rows = _count(con, rel(table))
    if new_rows > SMALL_ROWS or _count(con, f"pub.{rel(table)}") != new_rows:
        return False
    signs = "".join(f", signbit({quote(c)})" for c, t in cols if t in _FLOATS)
    names = ", ".join(quote(c) for c, _ in cols)
    # Equal counts and nothing of the new rows missing from the old (as a multiset): the same rows.
    missing = con.execute(
        f"select count(*) from (select {names}{signs} from {rel(table)} "
        f"except all select {names}{signs} from pub.{rel(table)})"
    ).fetchone()[0]  # type: ignore[index]
    return missing == 0
