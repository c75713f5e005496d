"""Orders database extractor: incremental by `updated_at` with a look-back, SQLite or PostgreSQL.

Window per run: `(watermark - lookback, interval_end]` on `updated_at` (no watermark yet: everything up to
interval_end). The look-back re-reads recent rows so that a transaction that committed late with an older
`updated_at` (clock skew) is still picked up; re-read versions are duplicates and are skipped. The new
watermark (the newest `updated_at` read, never past interval_end) is written in the transaction of the
window's last batch: a kill before it means the rerun re-reads the window and skips what already landed.

`order_items` have no `updated_at`: they are read with their orders (items of the orders in the window, from
the same snapshot) and the orders watermark only moves once the items landed. `fx_rates` are small and read
up to interval_end's date every run.

Before reading, the database is opened with bounded retries (`SourceUnavailableError` names the URL with
its password masked) and every table is checked for the columns its contract requires (`contract`).
Columns the layout does not name land in `_extra`. Text that is not valid UTF-8 (SQLite stores whatever
bytes it is given) is quarantined with the column it was found in. Two different contents under one
(id, updated_at) are a conflict: the first lands, the others are quarantined (`landing.MergeRule`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from rapport.core.config import Settings
from rapport.extractors.coerce import columns, typed_query
from rapport.extractors.contract import check_columns
from rapport.extractors.errors import redact_url, retry_source
from rapport.extractors.landing import (
    ExtractResult,
    TableCounts,
    Timer,
    ensure_schema,
    merge_batch,
    to_utc_naive,
    utc_now,
    utc_session,
)
from rapport.extractors.sql_source import SqlSource, open_source, qi
from rapport.extractors.state import (
    batch_transaction,
    get_state,
    log_failure,
    put_state,
    with_last,
    write_extraction_log,
)

log = logging.getLogger(__name__)

SOURCE = "orders"
# raw table -> source table
TABLES = {
    "shop_customers": "customers",
    "shop_orders": "orders",
    "shop_order_items": "order_items",
    "shop_fx_rates": "fx_rates",
}
DEFAULT_BATCH_ROWS = 500_000
CONNECT_ATTEMPTS, CONNECT_BASE_S = 4, 0.25  # a blip in the database; Airflow's task retries cover outages


def _location(raw_table: str) -> str:
    src = TABLES[raw_table]
    if raw_table == "shop_fx_rates":
        return f"'{src}:' || coalesce(v_rate_date, '?') || '/' || coalesce(v_currency, '?')"
    return f"'{src}:id=' || coalesce(v_id, '?')"


class _Lander:
    """Lands Arrow batches of text columns into one raw table, typing them in DuckDB."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str) -> None:
        self.con = con
        self.run_id = run_id
        self._next_ord = 0  # increasing across batches: merge_batch orders rows by it

    def land(self, raw_table: str, batch: pa.Table, post_where: str | None, params: list,
             extras: dict[str, str]) -> TableCounts:
        """`extras`: output column -> source column name, for the columns the layout does not name."""
        known = {c.name for c in columns(raw_table)}
        present = [n for n in batch.column_names if n in known]
        batch, pre = repair_utf8(batch)
        raw_struct = "struct_pack(" + ", ".join(
            f"{qi(extras.get(n, n))} := t.{qi(n)}" for n in batch.column_names) + ")"
        start, self._next_ord = self._next_ord, self._next_ord + batch.num_rows
        batch = batch.append_column("_ord", pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64)))
        batch = batch.append_column("_pre", pre)
        extra_sql = (
            "to_json(struct_pack(" + ", ".join(f"{qi(src)} := {qi(n)}" for n, src in extras.items()) + "))"
            if extras else "null"
        )
        sql = typed_query(
            raw_table,
            {n: qi(n) for n in present},
            from_sql="_in t",
            source_sql=f"'table:{TABLES[raw_table]}'",
            raw_sql=raw_struct,
            raw_final="to_json(_raw_src)",
            loc_sql=_location(raw_table),
            ord_sql="_ord",
            extra_sql=extra_sql,
            pre_reason_sql="_pre",
            post_where=post_where,
        )
        self.con.register("_in", batch)
        try:
            return merge_batch(self.con, raw_table, sql, system=SOURCE, run_id=self.run_id, params=params)
        finally:
            with suppress(duckdb.Error):  # in an aborted transaction: keep its error
                self.con.unregister("_in")


def repair_utf8(batch: pa.Table) -> tuple[pa.Table, pa.Array]:
    """SQLite text can hold bytes that are not UTF-8 (and a BLOB cast to text always may); DuckDB refuses
    such strings. Those values are replaced by their text with the bad bytes escaped (`\\xff`) and the row
    gets a reason, so it is quarantined showing what the source held. Valid batches cost one check."""
    reasons: list[str | None] = [None] * batch.num_rows
    cols = {}
    for name in batch.column_names:
        col = batch.column(name)
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        values = col.cast(pa.binary()).to_pylist()  # a string -> binary cast does not validate
        fixed = []
        for i, v in enumerate(values):
            if v is None:
                fixed.append(None)
                continue
            try:
                fixed.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                fixed.append(v.decode("utf-8", "backslashreplace"))
                reasons[i] = "; ".join(filter(None, [reasons[i], f"invalid UTF-8 in {name}"]))
        cols[name] = pa.array(fixed, pa.string())
    for name, arr in cols.items():
        batch = batch.set_column(batch.column_names.index(name), name, arr)
    return batch, pa.array(reasons, pa.string())


def _select(src: SqlSource, raw_table: str) -> tuple[list[tuple[str, str | None]], dict[str, str]]:
    """Known columns (NULL when the source lacks one) plus any unknown source columns (kept in _extra),
    and the unknown ones' output names. Those are positional (`_x0`, ...): a source column may be named
    anything, `_ord` or `_sentinel` included, and must not collide with the extractor's own columns."""
    have = src.columns(TABLES[raw_table])
    known = [c.name for c in columns(raw_table)]
    extras = {f"_x{i}": c for i, c in enumerate(c for c in have if c not in known)}
    return [(c, c if c in have else None) for c in known] + [(n, c) for n, c in extras.items()], extras


def check_tables(src: SqlSource) -> None:
    """Stop before landing anything when a table lacks a column its contract requires."""
    for raw_table, table in TABLES.items():
        have = src.columns(table)
        where = f"table {table}" if have else f"table {table} (missing or without columns)"
        check_columns(SOURCE, where, raw_table, have)


def _window(
    con: duckdb.DuckDBPyConnection,
    src: SqlSource,
    lander: _Lander,
    counts: dict[str, TableCounts],
    *,
    run_id: str,
    hi: datetime,
    lookback: timedelta,
    batch_rows: int,
    main: str,
    with_items: bool,
) -> None:
    """One incremental unit: `main` (customers or orders) in the window, then the items of those orders."""
    key = f"{TABLES[main]}.updated_at"
    stored = get_state(con, SOURCE, key)
    watermark = datetime.fromisoformat(stored) if stored else None
    lo = watermark - lookback if watermark else None
    if lo is not None and lo >= hi:
        log.info("%s: watermark %s is past interval end %s; nothing to read", main, watermark, hi)
        return
    window = src.ts_window("updated_at", lo, hi)
    post_where = "updated_at is null or (updated_at <= ?" + (" and updated_at > ?)" if lo else ")")
    params = [hi, lo] if lo else [hi]

    sel = {main: _select(src, main)}
    if with_items:
        sel["shop_order_items"] = _select(src, "shop_order_items")

    def streams() -> Iterator[tuple[str, pa.Table]]:
        for b in src.stream(sel[main][0], f"{qi(TABLES[main])} t where {window}", batch_rows):
            yield main, b
        if with_items:
            items = "shop_order_items"
            where = f'{qi("order_items")} t where t."order_id" in (select "id" from {qi("orders")} where {window})'
            for b in src.stream(sel[items][0], where, batch_rows):
                yield items, b

    newest = watermark
    for (table, batch), last in with_last(streams()):
        with Timer(counts[table]), batch_transaction(con):
            if table == main:
                c = lander.land(table, batch, post_where, params, sel[table][1])
                # rejected rows count too: they are in quarantine and need not be read again
                top = con.execute("select max(updated_at) from _typed").fetchall()[0][0]
                if top is not None and (newest is None or top > newest):
                    newest = top
            else:
                c = lander.land(table, batch, None, [], sel[table][1])
            counts[table].add(c)
            if last and newest is not None and newest != watermark:
                put_state(con, SOURCE, key, newest.isoformat(sep=" "), run_id)


def _password(url: str) -> str | None:
    try:
        return sa.make_url(url).password
    except Exception:  # an unparsable URL fails in open_source with its own message
        return None


def extract_orders(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, interval_end: datetime
) -> ExtractResult:
    """Land customers, orders, order_items and fx_rates changed up to `interval_end` into raw.shop_*."""
    ensure_schema(con)
    started = utc_now()
    hi = to_utc_naive(interval_end)
    lookback = timedelta(minutes=settings.orders_lookback_minutes)
    batch_rows = int(settings.extra.get("orders_batch_rows", DEFAULT_BATCH_ROWS))
    counts = {t: TableCounts() for t in TABLES}
    lander = _Lander(con, run_id)
    url = settings.orders_db_url
    extra = settings.extra
    try:
        src = retry_source(
            lambda: open_source(url), source="orders database", where=redact_url(url),
            attempts=int(extra.get("orders_connect_attempts", CONNECT_ATTEMPTS)),
            base_s=float(extra.get("orders_connect_base_s", CONNECT_BASE_S)),
            fatal=(ValueError, ImportError, sa.exc.ArgumentError), secrets=[_password(url)],
        )
        with utc_session(con), src:
            check_tables(src)
            common = dict(run_id=run_id, hi=hi, lookback=lookback, batch_rows=batch_rows)
            _window(con, src, lander, counts, main="shop_customers", with_items=False, **common)
            _window(con, src, lander, counts, main="shop_orders", with_items=True, **common)
            fx = "shop_fx_rates"
            where = f"{qi('fx_rates')} t where {src.date_upto('rate_date', hi.date())}"
            post = "rate_date is null or rate_date <= ?"
            fx_sel, fx_extras = _select(src, fx)
            for batch in src.stream(fx_sel, where, batch_rows):
                with Timer(counts[fx]), batch_transaction(con):
                    counts[fx].add(lander.land(fx, batch, post, [hi.date()], fx_extras))
    except Exception:
        log_failure(con, run_id=run_id, source=SOURCE, tables=counts, started_at=started)
        raise
    write_extraction_log(con, run_id=run_id, source=SOURCE, tables=counts, started_at=started)
    return ExtractResult.from_tables(SOURCE, counts)
