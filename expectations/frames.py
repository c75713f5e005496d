"""What each suite validates: one DuckDB query per suite, exported to a Parquet file for Great Expectations.
This module: the raw table suites and the export; `volume.py` and `mart_frames.py` hold the others.

Raw tables hold one row per landed *version*. A raw suite looks at the latest version of every record
that was landed by a run whose rows this suite has not yet passed (so a first load checks everything, a
daily run checks its increment, and rows of a run that failed stay in scope until they are fixed). The
latest version is taken with `rank()`, not `row_number()`: two different rows under one key at the same
version survive as a tie, and the key-uniqueness expectation then fails on them.

Derived columns carry cross-row and cross-table facts (arithmetic gaps, orphans) as ordinary columns so
that plain GX column expectations can check them; orphan-style columns hold the offending value or null.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from rapport.expectations.candidate_rows import candidate_query
from rapport.expectations.catalog import SuiteSpec

# A run whose rows a suite has passed: every error-severity expectation of that suite succeeded.
VALIDATED_RUNS = """
    select run_id from ops.check_results
    where gate = 'raw' and suite = {suite}
    group by run_id
    having bool_and(success or severity = 'warn')"""


@dataclass(frozen=True)
class RawTable:
    table: str
    key: tuple[str, ...]
    version_order: str  # newest version first
    stable_column: str | None = "created_at"  # must not change between versions of one record
    derived: str = ""  # extra select items over `latest`


def _unmatched(column: str, parent: str, name: str, *, parent_key: str = "id", value: str = "") -> str:
    """Select item `name`: latest.`column` where no row of raw.`parent` has it as `parent_key` (`value`: the
    expression compared, latest.`column` by default), else null; a null `column` is never unmatched."""
    value = value or f"latest.{column}"
    return (
        f"case when latest.{column} is not null and not exists (select 1 from raw.{parent} as parent "
        f"where parent.{parent_key} = {value}) then latest.{column} end as {name}"
    )


RAW_TABLES: dict[str, RawTable] = {
    t.table: t
    for t in [
        RawTable("shop_customers", ("id",), "updated_at desc"),
        RawTable(
            "shop_orders",
            ("id",),
            "updated_at desc",
            derived=f"""
            latest.total - (latest.subtotal - latest.discount_total + latest.shipping_total + latest.tax_total)
                as total_minus_components,
            case when latest.refunded_total > 0 and latest.status not in ('refunded', 'partially_refunded')
                then latest.status end as refund_status_mismatch,
            case when latest.customer_id is null and nullif(trim(latest.email), '') is null
                then latest.id end as guest_order_without_email,
            {_unmatched("customer_id", "shop_customers", "orphan_customer_id")},
            case when latest.currency <> 'USD' and not exists (
                    select 1 from raw.shop_fx_rates as rates
                    where rates.currency = latest.currency and rates.rate_date <= latest.created_at::date)
                then latest.currency end as currency_without_rate""",
        ),
        RawTable(
            "shop_order_items",
            ("id",),
            "_extracted_at desc",
            stable_column=None,
            derived=_unmatched("order_id", "shop_orders", "orphan_order_id"),
        ),
        RawTable("shop_fx_rates", ("rate_date", "currency"), "_extracted_at desc", stable_column=None),
        RawTable(
            "helpdesk_users",
            ("id",),
            "updated_at desc",
            derived=_unmatched(
                "external_id",
                "shop_customers",
                "unknown_external_id",
                parent_key="id::varchar",
                value="trim(latest.external_id)",
            ),
        ),
        RawTable(
            "helpdesk_tickets",
            ("id",),
            "updated_at desc",
            derived=f"""
            latest.via ->> 'channel' as via_channel,
            latest.satisfaction_rating ->> 'score' as satisfaction_score,
            try_cast(latest.metric_set ->> 'reopens' as bigint) as reopens,
            try_cast(latest.metric_set -> 'reply_time_in_minutes' ->> 'calendar' as bigint) as reply_minutes,
            try_cast(latest.metric_set -> 'full_resolution_time_in_minutes' ->> 'calendar' as bigint)
                as full_resolution_minutes,
            {_unmatched("requester_id", "helpdesk_users", "orphan_requester_id")}""",
        ),
        RawTable("esp_contacts", ("contact_id",), "updated_at desc nulls last"),
        RawTable("esp_campaigns", ("campaign_id",), "snapshot_date desc", stable_column=None),
        RawTable(
            "esp_audiences",
            ("campaign_id", "email"),
            "_extracted_at desc",
            stable_column=None,
            derived=_unmatched("campaign_id", "esp_campaigns", "unknown_campaign_id", parent_key="campaign_id"),
        ),
        RawTable(
            "esp_events",
            ("sg_event_id",),
            "_extracted_at desc",
            stable_column=None,
            derived=f"""
            make_timestamp(latest."timestamp" * 1000000) as event_at,
            case when latest.event = 'bounce' and coalesce(latest.type, '') not in ('bounce', 'blocked')
                then coalesce(latest.type, '(null)') end as unknown_bounce_type,
            {_unmatched("campaign_id", "esp_campaigns", "unknown_campaign_id", parent_key="campaign_id")}""",
        ),
    ]
}


@dataclass(frozen=True)
class Frame:
    suite: str
    queries: tuple[str, ...]  # tried in order: the first that binds is the frame
    relation: str
    # the columns exported (those of the query that binds, by name); None: every column. Columns no
    # expectation reads would cost export, reading into pandas and GX's per-column work for nothing.
    columns: frozenset[str] | None = None
    # Counting the rows costs little next to writing them (a mart's frame: one row per mart row, derived
    # columns DuckDB need not compute to count): a frame to split in parts is counted first and written
    # straight into its parts. A raw frame's count would compute its window over the versions once more.
    count_first: bool = False
    # The suite's expectations, to write only the rows they could object to (candidate_rows.py) when each of
    # them allows it; empty: every row.
    candidates_of: tuple[dict, ...] = ()


@dataclass(frozen=True)
class ExportedFrame:
    suite: str
    path: Path  # a Parquet file, or a glob over the parts (DuckDB's read_parquet takes both)
    rows: int
    columns: tuple[str, ...]
    problem: str | None  # why the intended query could not be used (missing table or column)
    relation_missing: bool = False  # nothing bound: the frame is an empty marker
    parts: tuple[Path, ...] = ()  # the files Great Expectations validates one at a time
    # the frame's rows when the files hold only its candidate rows (`rows` of them); None: every row
    frame_rows: int | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        return self.parts or (self.path,)


def lit(value: object) -> str:
    """SQL literal for the few values inlined into frame queries (COPY takes no parameters)."""
    if isinstance(value, datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def existing_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def raw_frame(spec: SuiteSpec) -> Frame:
    t = RAW_TABLES[spec.relation.removeprefix("raw.")]
    key = ", ".join(t.key)
    variants = (
        f", count(distinct records.{t.stable_column}) over (partition by {key}) as {t.stable_column}_variants"
        if t.stable_column
        else ""
    )
    scoped_latest = f"""
        with validated_runs as ({VALIDATED_RUNS.format(suite=lit(spec.name))}),
        touched_records as (
            select distinct {key} from raw.{t.table} as landed
            where not exists (select 1 from validated_runs where validated_runs.run_id = landed._run_id)
        ),
        versions as (
            select records.*, rank() over (partition by {key} order by {t.version_order}) as _version_rank
                {variants}
            from raw.{t.table} as records
            semi join touched_records using ({key})
        ),
        latest as (select * exclude (_version_rank) from versions where _version_rank = 1)"""
    derived = f", {t.derived}" if t.derived else ""
    return Frame(
        suite=spec.name,
        relation=f"raw.{t.table}",
        queries=(
            f"{scoped_latest}\nselect latest.*{derived} from latest",
            f"{scoped_latest}\nselect latest.* from latest",
            f"select * from raw.{t.table}",
        ),
    )


# DuckDB types that pandas reads back awkwardly from Parquet are exported as their plain equivalents:
# exact decimals as doubles (numeric checks), dates as timestamps, JSON and nested values as text.
def _export_cast(name: str, duck_type: str) -> str | None:
    t = duck_type.upper()
    q = f'"{name}"'
    if t.startswith("DECIMAL") or t in ("HUGEINT", "UHUGEINT", "UBIGINT"):
        return f"{q}::double"
    if t == "DATE":
        return f"{q}::timestamp"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return f"timezone('UTC', {q})"
    if t in ("TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
        return f"{q}::timestamp"
    if t in ("JSON", "UUID", "INTERVAL", "TIME", "BLOB") or t.endswith("]") or t.startswith(("STRUCT", "MAP")):
        return f"{q}::varchar"
    return None


def export_frame(
    con: duckdb.DuckDBPyConnection,
    frame: Frame,
    path: Path,
    *,
    chunk_rows: int | None = None,
    chunk_key: tuple[str, ...] = (),
) -> ExportedFrame:
    """Write the first query of `frame` that binds to `path`; an empty marker frame if none does.

    A frame of more than `chunk_rows` rows is split into Parquet parts by a hash of `chunk_key`, so every
    row of one key lands in the same part: a part can be validated on its own (row-wise expectations, and
    uniqueness of a column set that contains the key) and the parts' results add up to the whole frame's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    parts_dir = path.with_suffix(".parts")
    shutil.rmtree(parts_dir, ignore_errors=True)
    problem = None
    for i, sql in enumerate(frame.queries):
        try:
            described = con.execute(f"describe {sql}").fetchall()
        except (duckdb.CatalogException, duckdb.BinderException) as exc:
            if problem is None:
                problem = _first_line(exc)
            continue
        if frame.columns is not None and any(name in frame.columns for name, *_ in described):
            # only by name: a contract column the relation lacks still fails its suite's column-set check
            described = [d for d in described if d[0] in frame.columns]
        casts = [(name, _export_cast(name, duck_type)) for name, duck_type, *_ in described]
        select = ", ".join(f'{cast} as "{name}"' if cast else f'"{name}"' for name, cast in casts)
        exported = f"select {select} from ({sql}) as frame"
        names = tuple(n for n, _ in casts)
        frame_rows = None
        if frame.candidates_of:
            types = {name: t for name, t, *_ in con.execute(f"describe {exported}").fetchall()}
            candidates = candidate_query(exported, frame.candidates_of, types)
            if candidates is not None:
                frame_rows = con.execute(f"select count(*) from ({exported})").fetchall()[0][0]
                exported = candidates
        parts: tuple[Path, ...] = ()
        splittable = bool(chunk_rows and chunk_key and set(chunk_key) <= set(names))
        # candidate rows are few: written whole (counting them first would look for them twice)
        count_first = frame.count_first and frame_rows is None
        if splittable and count_first:
            # a frame to split is written once, in its parts, rather than whole and then again in parts
            rows = con.execute(f"select count(*) from ({exported})").fetchall()[0][0]
            if rows > chunk_rows:
                parts = _write_parts(con, f"({exported})", parts_dir, -(-rows // chunk_rows), chunk_key)
                path.unlink(missing_ok=True)  # a whole frame of an earlier run: stale
        if not parts:
            con.execute(f"copy ({exported}) to {lit(str(path))} (format parquet)")
            rows = con.execute(f"select count(*) from read_parquet({lit(str(path))})").fetchall()[0][0]
            if splittable and not count_first and rows > chunk_rows:
                whole = f"read_parquet({lit(str(path))})"
                parts = _write_parts(con, whole, parts_dir, -(-rows // chunk_rows), chunk_key)
                path.unlink()
        return ExportedFrame(
            frame.suite,
            parts_dir / "*.parquet" if parts else path,
            rows,
            names,
            problem if i > 0 else None,
            parts=parts,
            frame_rows=frame_rows,
        )
    # Nothing binds (the relation is missing): an empty frame fails every column expectation.
    con.execute(f"copy (select null::varchar as _relation_missing where false) to {lit(str(path))} (format parquet)")
    return ExportedFrame(
        frame.suite, path, 0, ("_relation_missing",), problem or f"{frame.relation} missing", relation_missing=True
    )


def _write_parts(
    con: duckdb.DuckDBPyConnection, rows: str, parts_dir: Path, n: int, key: tuple[str, ...]
) -> tuple[Path, ...]:
    """Write `rows` (the exported frame: its query in parentheses, or its whole Parquet file) in `n` Parquet
    parts by a hash of `key`, taken over the exported values (after the casts to the frame's types)."""
    parts_dir.mkdir(parents=True)
    by_key = "hash(" + ", ".join(f'"{k}"' for k in key) + f") % {n}"
    con.execute(
        f"""copy (select *, {by_key} as _part from {rows} as exported)
            to {lit(str(parts_dir / "hive"))} (format parquet, partition_by (_part))"""
    )
    parts = []
    # one file per part, named so that the parts sort in order (hive folders hold DuckDB-named files)
    for i in range(n):
        files = sorted((parts_dir / "hive" / f"_part={i}").glob("*.parquet"))
        target = parts_dir / f"part-{i + 1:04d}-of-{n:04d}.parquet"
        if not files:  # no key hashed here: an empty part with the frame's columns
            con.execute(f"copy (select * from {rows} as exported limit 0) to {lit(str(target))} (format parquet)")
        elif len(files) == 1:
            files[0].rename(target)
        else:
            listed = ", ".join(lit(str(f)) for f in files)
            con.execute(f"copy (select * from read_parquet([{listed}])) to {lit(str(target))} (format parquet)")
        parts.append(target)
    shutil.rmtree(parts_dir / "hive")
    return tuple(parts)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def contracts_by_table(specs: Iterable[SuiteSpec]) -> dict[str, list[str]]:
    return {
        s.relation.removeprefix("raw."): s.contract_columns
        for s in specs
        if s.relation.removeprefix("raw.") in RAW_TABLES
    }
