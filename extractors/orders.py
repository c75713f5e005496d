"""Orders database extractor: incremental by `updated_at` with a look-back, SQLite or PostgreSQL.

Window per run: `(watermark - lookback, interval_end]` on `updated_at` (no watermark yet: everything up to
interval_end). The look-back re-reads recent rows so that a transaction that committed late with an older
`updated_at` (clock skew) is still picked up; re-read versions are duplicates and are skipped. The new
watermark (the newest `updated_at` read, never past interval_end) is written in the transaction of the
window's last batch: a kill before it means the rerun re-reads the window and skips what already landed.

`order_items` have no `updated_at`: they are read with their orders (items of the orders in the window, from
the same snapshot) and the orders watermark only moves once the items landed. `fx_rates` are small and read
up to interval_end's date every run.

Rows dated more than RAPPORT_CLOCK_SKEW_MINUTES after the extraction are read too, and quarantined
(`source_health.future_check`): they never move the watermark, are read again every run and land once their
time has come. A transaction that commits later than the look-back (rows older than `watermark - lookback`
appearing after the watermark passed them) is found by the reconciliation: every run compares the source's
keys and `updated_at` over `(watermark - RAPPORT_ORDERS_RECONCILE_DAYS, watermark - lookback]` with the raw
tables and lands what is missing (`ExtractResult.reconciled`).

Before reading, the database is opened with bounded retries (`SourceUnavailableError` names the URL with
its password masked; a missing SQLite file or an unsupported URL is a `SourceConfigError`, not retried),
every table is checked for the columns its contract requires (`contract`), and each table must hold at
least as many rows as were landed from it (`source_health`: an emptied table stops the run).
Columns the layout does not name land in `_extra`. Text that is not valid UTF-8 (SQLite stores whatever
bytes it is given) is quarantined with the column it was found in. Two different contents under one
(id, updated_at) are a conflict: the first lands, the others are quarantined (`landing.MergeRule`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from rapport.core.config import Settings
from rapport.extractors.coerce import cast_expr, columns, natural_key, quote, typed_query
from rapport.extractors.contract import check_columns
from rapport.extractors.errors import redact_url, retry_source
from rapport.extractors.extraction import extraction
from rapport.extractors.landing import ExtractResult, TableCounts, Timer, merge_batch, utc_now
from rapport.extractors.source_health import Finding, future_check, volume_finding
from rapport.extractors.sql_source import SqlSource, open_source, qi
from rapport.extractors.state import batch_transaction, get_state, put_state, with_last

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

    def land(
        self,
        raw_table: str,
        batch: pa.Table,
        post_where: str | None,
        params: list,
        extras: dict[str, str],
        typed_checks: list[str] | None = None,
    ) -> TableCounts:
        """`extras`: output column -> source column name, for the columns the layout does not name."""
        known = {c.name for c in columns(raw_table)}
        present = [n for n in batch.column_names if n in known]
        batch, pre = repair_utf8(batch)
        raw_struct = (
            "struct_pack(" + ", ".join(f"{qi(extras.get(n, n))} := t.{qi(n)}" for n in batch.column_names) + ")"
        )
        start, self._next_ord = self._next_ord, self._next_ord + batch.num_rows
        batch = batch.append_column("_ord", pa.array(np.arange(start, start + batch.num_rows, dtype=np.int64)))
        batch = batch.append_column("_pre", pre)
        extra_sql = (
            "to_json(struct_pack(" + ", ".join(f"{qi(src)} := {qi(n)}" for n, src in extras.items()) + "))"
            if extras
            else "null"
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
            typed_checks_sql=typed_checks,
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


def table_drops(con: duckdb.DuckDBPyConnection, src: SqlSource, settings: Settings) -> list[Finding]:
    """Tables holding fewer rows than the records landed from them (rows are never deleted in the shop)."""
    out = []
    for raw_table, table in TABLES.items():
        keys = ", ".join(quote(k) for k in natural_key(raw_table))
        landed = con.execute(f"select count(*) from (select distinct {keys} from raw.{raw_table})").fetchall()[0][0]
        if not landed:
            continue
        held = src.count(table)  # once: a count(*) of the whole table (~60 ms for 1M orders)
        found = volume_finding(
            settings,
            SOURCE,
            f"table {table} holds {held} rows, {landed} were landed before",
            held,
            landed,
            "was it emptied, or is RAPPORT_ORDERS_DB_URL another copy? Fix it and rerun",
        )
        out += [found] if found else []
    return out


@dataclass
class _Run:
    """What every read of one extraction shares."""

    con: duckdb.DuckDBPyConnection
    src: SqlSource
    lander: _Lander
    counts: dict[str, TableCounts]
    run_id: str
    hi: datetime  # the interval end
    cut: datetime  # later than this is dated in the future
    future: str  # the quarantine check for those (source_health.future_check)
    lookback: timedelta
    horizon: timedelta  # how far back the reconciliation looks
    batch_rows: int


def _read(
    run: _Run,
    main: str,
    with_items: bool,
    window: str,
    post_where: str,
    params: list,
    *,
    future: bool = False,
    key: str | None = None,
    watermark: datetime | None = None,
) -> int:
    """Land the rows of `main` matching `window` (SQL on the source; `post_where` is the exact filter on the
    typed rows) and, with `future`, those dated in the future (to quarantine them); then the items of the
    orders in `window`, in batches. With `key`, move that watermark to the newest `updated_at` landed or
    quarantined up to the interval end (never a future date). Returns the rows of `main` landed."""
    src, con = run.src, run.con
    sel = {main: _select(src, main)}
    if with_items:
        sel["shop_order_items"] = _select(src, "shop_order_items")
    rows = f"({window} or {src.ts_after('updated_at', run.cut)})" if future else window

    def streams() -> Iterator[tuple[str, pa.Table]]:
        for b in src.stream(sel[main][0], f"{qi(TABLES[main])} t where {rows}", run.batch_rows):
            yield main, b
        if with_items:
            items = "shop_order_items"
            where = f'{qi("order_items")} t where t."order_id" in (select "id" from {qi("orders")} t where {window})'
            for b in src.stream(sel[items][0], where, run.batch_rows):
                yield items, b

    newest = watermark
    landed = 0
    for (table, batch), last in with_last(streams()):
        with Timer(run.counts[table]), batch_transaction(con):
            if table == main:
                c = run.lander.land(table, batch, post_where, params, sel[table][1], [run.future])
                landed += c.rows_landed
                # rejected rows count too: they are in quarantine and need not be read again
                top = con.execute("select max(updated_at) from _typed where updated_at <= ?", [run.hi]).fetchall()[0][0]
                if top is not None and (newest is None or top > newest):
                    newest = top
            else:
                c = run.lander.land(table, batch, None, [], sel[table][1])
            run.counts[table].add(c)
            if key and last and newest is not None and newest != watermark:
                put_state(con, SOURCE, key, newest.isoformat(sep=" "), run.run_id)
    return landed


def _window(run: _Run, main: str, with_items: bool) -> int:
    """One incremental unit: `main` (customers or orders) in the window, then the items of those orders.
    First the reconciliation of what the look-back no longer covers; returns the rows it landed."""
    key = f"{TABLES[main]}.updated_at"
    stored = get_state(run.con, SOURCE, key)
    watermark = datetime.fromisoformat(stored) if stored else None
    reconciled = _reconcile(run, main, with_items, watermark) if watermark else 0
    lo = watermark - run.lookback if watermark else None
    if lo is not None and lo >= run.hi:
        log.info("%s: watermark %s is past interval end %s; nothing to read", main, watermark, run.hi)
        return reconciled
    window = run.src.ts_window("updated_at", lo, run.hi)
    post_where = "updated_at is null or updated_at > ? or (updated_at <= ?" + (" and updated_at > ?)" if lo else ")")
    params = [run.cut, run.hi, lo] if lo else [run.cut, run.hi]
    _read(run, main, with_items, window, post_where, params, future=True, key=key, watermark=watermark)
    return reconciled


def _reconcile(run: _Run, main: str, with_items: bool, watermark: datetime) -> int:
    """Versions the source holds with `updated_at` in `(watermark - horizon, watermark - lookback]` that raw
    does not (committed later than the look-back): compared on keys and `updated_at` only, the missing
    rows are then read in full and landed, with their items."""
    lo, hi = watermark - run.horizon, watermark - run.lookback
    if lo >= hi:
        return 0
    table = TABLES[main]
    window = run.src.ts_window("updated_at", lo, hi)
    keys = list(
        run.src.stream([("id", "id"), ("updated_at", "updated_at")], f"{qi(table)} t where {window}", run.batch_rows)
    )
    if not keys:
        return 0
    run.con.register("_keys", pa.concat_tables(keys))
    try:
        missing = [
            r[0]
            for r in run.con.execute(
                f"""select distinct k.id from (select try_cast(id as bigint) as id,
                    {cast_expr("updated_at", "timestamp")} as updated_at from _keys) k
                where k.id is not null and k.updated_at > ? and k.updated_at <= ? and not exists (
                    select 1 from raw.{main} r where r.id = k.id and r.updated_at = k.updated_at)
                order by 1""",
                [lo, hi],
            ).fetchall()
        ]
    finally:
        run.con.unregister("_keys")
    landed = 0
    for at in range(0, len(missing), 10_000):
        listed = ", ".join(str(int(i)) for i in missing[at : at + 10_000])
        landed += _read(
            run,
            main,
            with_items,
            f"({window} and t.{qi('id')} in ({listed}))",
            "updated_at is null or (updated_at <= ? and updated_at > ?)",
            [hi, lo],
        )
    if landed:
        log.warning(
            "%s: %d row(s) committed later than the look-back (%s) found by the reconciliation and landed",
            table,
            landed,
            run.lookback,
        )
    return landed


def _password(url: str) -> str | None:
    try:
        return sa.make_url(url).password
    except Exception:  # an unparsable URL fails in open_source with its own message
        return None


def extract_orders(
    con: duckdb.DuckDBPyConnection, settings: Settings, *, run_id: str, interval_end: datetime
) -> ExtractResult:
    """Land customers, orders, order_items and fx_rates changed up to `interval_end` into raw.shop_*."""
    batch_rows = int(settings.extra.get("orders_batch_rows", DEFAULT_BATCH_ROWS))
    url = settings.orders_db_url
    extra = settings.extra
    with extraction(con, settings, SOURCE, TABLES, run_id=run_id, interval_end=interval_end) as ex:
        lander = _Lander(con, run_id)
        src = retry_source(
            lambda: open_source(url),
            source="orders database",
            where=redact_url(url),
            attempts=int(extra.get("orders_connect_attempts", CONNECT_ATTEMPTS)),
            base_s=float(extra.get("orders_connect_base_s", CONNECT_BASE_S)),
            fatal=(ImportError,),
            secrets=[_password(url)],
        )
        with src:
            check_tables(src)
            ex.check(table_drops(con, src, settings))
            cut = max(utc_now(), ex.interval_end) + timedelta(minutes=settings.clock_skew_minutes)
            run = _Run(
                con,
                src,
                lander,
                ex.counts,
                run_id,
                ex.interval_end,
                cut,
                future_check(settings, cut),
                timedelta(minutes=settings.orders_lookback_minutes),
                timedelta(days=settings.orders_reconcile_days),
                batch_rows,
            )
            ex.reconciled = _window(run, "shop_customers", False) + _window(run, "shop_orders", True)
            fx = "shop_fx_rates"
            where = f"{qi('fx_rates')} t where {src.date_upto('rate_date', ex.interval_end.date())}"
            post = "rate_date is null or rate_date <= ?"
            fx_sel, fx_extras = _select(src, fx)
            for batch in src.stream(fx_sel, where, batch_rows):
                with Timer(ex.counts[fx]), batch_transaction(con):
                    ex.counts[fx].add(lander.land(fx, batch, post, [ex.interval_end.date()], fx_extras))
    return ex.result()
