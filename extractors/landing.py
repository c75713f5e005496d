"""Landing typed batches into the warehouse: merge on natural keys, quarantine, counts.

Every extractor lands in batches (a chunk of rows, a helpdesk page, a group of ESP files). One batch is one
DuckDB transaction holding the rows, the quarantined records and the extractor state that describes them
(watermark, cursor or manifest rows): see `state.batch_transaction`. A kill at any point therefore either
keeps the whole batch and its state or neither, and a rerun re-reads from the last committed state.

Merging is idempotent: a version already present (same natural key, same content) is counted as a
duplicate and not written again; a changed version under the same key replaces the old one (latest landing
wins), except where a table's rule says otherwise (`MERGE_RULES`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from rapport.extractors import schemas
from rapport.extractors.coerce import columns, natural_key, quote, sql_str
from rapport.extractors.errors import LandingCountsError


@dataclass
class TableCounts:
    """What one extractor did to one raw table. Reconciles: read = landed + quarantined + duplicate."""

    rows_read: int = 0
    rows_landed: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    duration_s: float = 0.0

    def add(self, other: TableCounts) -> None:
        self.rows_read += other.rows_read
        self.rows_landed += other.rows_landed
        self.rows_quarantined += other.rows_quarantined
        self.rows_duplicate += other.rows_duplicate

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_landed + self.rows_quarantined + self.rows_duplicate


@dataclass
class ExtractResult:
    source: str
    rows_read: int
    rows_landed: int
    rows_quarantined: int
    rows_duplicate: int
    tables: dict[str, TableCounts] = field(default_factory=dict)
    findings: list[Any] = field(default_factory=list)  # source_health.Finding: warnings about the source
    future_dated: int = 0  # quarantined this run as dated in the future (included in rows_quarantined)
    reconciled: int = 0  # late commits the look-back missed, found by the reconciliation (in rows_landed)

    @classmethod
    def from_tables(cls, source: str, tables: dict[str, TableCounts]) -> ExtractResult:
        t = tables.values()
        return cls(
            source,
            sum(c.rows_read for c in t),
            sum(c.rows_landed for c in t),
            sum(c.rows_quarantined for c in t),
            sum(c.rows_duplicate for c in t),
            tables,
        )


@dataclass(frozen=True)
class MergeRule:
    keep_first: bool = False  # an existing key is never replaced (events: a webhook retry is the same event)
    ignore: tuple[str, ...] = ()  # columns that do not make a version different
    newer_by: str | None = None  # replace only when the incoming value of this column is >= the landed one
    # a key names one immutable version (id, updated_at): other content under it is quarantined, not merged
    conflicts: bool = False


MERGE_RULES: dict[str, MergeRule] = {
    # the orders database moves updated_at on every change: two contents for one (id, updated_at) mean the
    # source is broken (a lost primary key, a write that did not touch updated_at); which one is right is
    # unknown, so the first version read lands and every other one is quarantined, saying which columns differ
    "shop_customers": MergeRule(conflicts=True),
    "shop_orders": MergeRule(conflicts=True),
    "esp_events": MergeRule(keep_first=True),
    # the same contact version appears in every daily snapshot: it keeps the date it was first seen
    "esp_contacts": MergeRule(ignore=("snapshot_date",), newer_by="snapshot_date"),
}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw, quarantine and ops schemas and tables (idempotent)."""
    for stmt in schemas.raw_ddl():
        con.execute(stmt)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: datetime) -> datetime:
    """Airflow hands out aware datetimes; the warehouse stores naive UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@contextmanager
def utc_session(con: duckdb.DuckDBPyConnection):
    """Read offset-less timestamps as UTC whatever the connection's TimeZone; restore it afterwards."""
    prev = con.execute("select current_setting('TimeZone')").fetchall()[0][0]
    con.execute("set TimeZone = 'UTC'")
    try:
        yield
    finally:
        con.execute("set TimeZone = '" + str(prev).replace("'", "''") + "'")


def _key_match(key: Iterable[str], left: str, right: str) -> str:
    return " and ".join(f"{left}.{quote(k)} is not distinct from {right}.{quote(k)}" for k in key)


def merge_batch(
    con: duckdb.DuckDBPyConnection,
    table: str,
    typed_sql: str,
    *,
    system: str,
    run_id: str,
    params: list | None = None,
    extracted_at: datetime | None = None,
) -> TableCounts:
    """Merge the rows of `typed_sql` (a `coerce.typed_query`) into raw.<table>; run inside a transaction.

    Counts: a version superseded by a later one *within the same batch* is counted as a duplicate (only
    the surviving version is written); across batches the replacement is counted as landed.

    Callers that need figures from the batch (a watermark) can query the temp tables `_typed` (every row
    read, typed, with `_reason`) and `_cand` (the valid, de-duplicated rows) before the next merge.
    """
    extracted_at = extracted_at or utc_now()
    cols = [c.name for c in columns(table)]
    key = natural_key(table)
    rule = MERGE_RULES.get(table, MergeRule())
    cmp_cols = [c for c in cols if c not in rule.ignore] + ["_extra"]
    data = ", ".join(quote(c) for c in cols)
    keys = ", ".join(quote(k) for k in key)

    con.execute(f"create or replace temp table _typed as {typed_sql}", params or [])
    if rule.conflicts:
        _mark_conflicts(con, table, cols, key)
    n_read, n_rej = con.execute("select count(*), count(_reason) from _typed").fetchall()[0]
    n_valid = n_read - n_rej
    rej_new = 0
    if n_rej:
        # an exact re-rejection (same place, same text, same reason) is a duplicate, not a new reject
        rej_new = con.execute(
            f"""insert into quarantine.{table}_rejects
                select ?, _raw, _reason, _loc, ?, ? from _typed t
                where _reason is not null and not exists (
                    select 1 from quarantine.{table}_rejects q
                    where q.source = ? and q.location is not distinct from t._loc
                      and q.raw is not distinct from t._raw and q.reason = t._reason)
                qualify row_number() over (partition by _loc, _raw, _reason order by _ord) = 1""",
            [system, run_id, extracted_at, system],
        ).fetchall()[0][0]

    # one candidate per key. keep_first: the first occurrence. Otherwise what landing the rows one by one
    # would leave: the last distinct content, carried by the first row of its final run of equal contents.
    # The window functions are costly on millions of rows, and most batches repeat no key at all.
    repeated = con.execute(
        f"select count(*) from (select 1 from _typed where _reason is null group by {keys} having count(*) > 1)"
    ).fetchall()[0][0]
    valid = "select * exclude (_reason) from _typed where _reason is null"
    if repeated and rule.keep_first:
        con.execute(f"""create or replace temp table _dedup as
                        {valid} qualify row_number() over (partition by {keys} order by _ord) = 1""")
    elif repeated:
        h = ", ".join(quote(c) for c in cmp_cols)
        con.execute(
            f"""create or replace temp table _dedup as
                with runs as (
                    select *, coalesce(hash({h}) <> lag(hash({h})) over (partition by {keys} order by _ord),
                                       true) as _run_start
                    from ({valid}))
                select * exclude (_run_start) from runs where _run_start
                qualify row_number() over (partition by {keys} order by _ord desc) = 1"""
        )
    con.execute(f"create or replace temp view _cand as {'select * from _dedup' if repeated else valid}")
    n_cand = con.execute("select count(*) from _cand").fetchall()[0][0]

    insert = (
        f"insert into raw.{table} ({data}, _run_id, _extracted_at, _source, _extra) "
        f"select {data}, ?, ?, _source, _extra"
    )
    n_dup = 0
    hits = (
        con.execute(
            f"select count(*) from _cand c where exists (select 1 from raw.{table} t where {_key_match(key, 'c', 't')})"
        ).fetchall()[0][0]
        if n_cand
        else 0
    )
    if not hits:  # all new: the common case of a first or incremental load
        landed = con.execute(f"{insert} from _cand", [run_id, extracted_at]).fetchall()[0][0] if n_cand else 0
    else:
        same = " and ".join(f"c.{quote(k)} is not distinct from t.{quote(k)}" for k in cmp_cols)
        stale = f"when c.{quote(rule.newer_by)} < t.{quote(rule.newer_by)} then 'dup'" if rule.newer_by else ""
        wanted = [*key, *cmp_cols, *([rule.newer_by] if rule.newer_by else [])]
        cmp_select = ", ".join(quote(c) for c in dict.fromkeys(wanted))
        # _cls holds the classification only (row, key, state): the candidates are most often a whole daily
        # snapshot of which few rows changed, and a copy of every candidate's columns cost more than the join
        con.execute(
            f"""create or replace temp table _cls as
                select c._ord, {", ".join(f"c.{quote(k)}" for k in key)},
                       case when t._hit is null then 'new'
                            when {same} then 'dup'
                            {"when true then 'dup'" if rule.keep_first else ""}
                            {stale}
                            else 'changed' end as _state
                from _cand c
                left join (select {cmp_select}, true as _hit from raw.{table}) t on {_key_match(key, "c", "t")}"""
        )
        n_dup, n_changed = con.execute(
            "select count(*) filter (where _state = 'dup'), count(*) filter (where _state = 'changed') from _cls"
        ).fetchall()[0]
        if n_changed:
            con.execute(
                f"delete from raw.{table} t using _cls c where c._state = 'changed' and {_key_match(key, 'c', 't')}"
            )
        written = ", ".join(f"c.{quote(c)}" for c in cols)
        landed = con.execute(
            f"insert into raw.{table} ({data}, _run_id, _extracted_at, _source, _extra) "
            f"select {written}, ?, ?, c._source, c._extra from _cand c join _cls s on c._ord = s._ord "
            "where s._state in ('new', 'changed')",
            [run_id, extracted_at],
        ).fetchall()[0][0]
    counts = TableCounts(
        rows_read=n_read,
        rows_landed=landed,
        rows_quarantined=rej_new,
        rows_duplicate=(n_rej - rej_new) + (n_valid - n_cand) + n_dup,
    )
    if not counts.reconciles:  # not an assert: `python -O` would drop it, and its message would say nothing
        raise LandingCountsError(
            f"landing raw.{table}: the batch's counts do not reconcile: read {counts.rows_read} should equal "
            f"landed {counts.rows_landed} + quarantined {counts.rows_quarantined} + duplicate "
            f"{counts.rows_duplicate} (= {counts.rows_landed + counts.rows_quarantined + counts.rows_duplicate}); "
            "nothing of this batch was landed (its transaction is rolled back). This is a bug in rapport: "
            "please report it with this message"
        )
    return counts


def _mark_conflicts(con: duckdb.DuckDBPyConnection, table: str, cols: list[str], key: tuple[str, ...]) -> None:
    """Turn every valid row of `_typed` whose data differs from its key's reference version into a reject.

    The reference is the landed version of the key, else the first row of the batch with it (by `_ord`).
    `_extra` is not compared: a column added to the source would make every re-read version "differ". The
    reason is the same whichever the reference was, so a rerun re-rejects identically (a duplicate)."""
    keys = ", ".join(quote(k) for k in key)
    repeated = con.execute(
        f"select count(*) from (select 1 from _typed where _reason is null group by {keys} having count(*) > 1)"
    ).fetchall()[0][0]
    landed = con.execute(
        f"select count(*) from _typed c where _reason is null and exists "
        f"(select 1 from raw.{table} t where {_key_match(key, 'c', 't')})"
    ).fetchall()[0][0]
    if not repeated and not landed:
        return
    data = [c for c in cols if c not in key]
    sel = ", ".join(quote(c) for c in cols)
    diff = ", ".join(f"case when v.{quote(c)} is distinct from r.{quote(c)} then {sql_str(c)} end" for c in data)
    con.execute(f"""
        create or replace temp table _conflicts as
        with valid as (select _ord, {sel} from _typed where _reason is null),
        held as (
            select {sel}, 0 as _pri from raw.{table} t
            where exists (select 1 from valid v where {_key_match(key, "v", "t")})
            union all by name
            select {sel}, 1 as _pri from valid
            qualify row_number() over (partition by {keys} order by _pri, _ord) = 1
        ),
        ref as (select * from held qualify row_number() over (partition by {keys} order by _pri) = 1)
        select v._ord, concat_ws(', ', {diff}) as _diff
        from valid v join ref r on {_key_match(key, "v", "r")}
        where _diff <> ''""")
    what = " and ".join(key)
    con.execute(f"""
        update _typed set
            _reason = 'conflicting version: another row has the same {what} and a different ' || c._diff,
            _raw = to_json(struct_pack({", ".join(f"{quote(n)} := _typed.{quote(n)}" for n in cols)},
                                       _extra := _typed._extra))::varchar
        from _conflicts c where _typed._ord = c._ord""")
    con.execute("drop table _conflicts")


def drop_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Free the per-batch temp tables (the last batch can be large) once an extractor is done."""
    con.execute("drop view if exists _cand")
    for name in ("_typed", "_dedup", "_cls"):
        con.execute(f"drop table if exists {name}")


class Timer:
    """Accumulates wall time into a TableCounts (several passes may add to one table)."""

    def __init__(self, counts: TableCounts) -> None:
        self.counts = counts

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.counts.duration_s += time.perf_counter() - self._t0
