"""What each suite validates: one DuckDB query per suite, exported to a Parquet file for Great Expectations.

Raw tables hold one row per landed *version*. A raw suite looks at the latest version of every record
that was landed by a run whose rows this suite has not yet passed (so a first load checks everything, a
daily run checks its increment, and rows of a run that failed stay in scope until they are fixed). The
latest version is taken with `rank()`, not `row_number()`: two different rows under one key at the same
version survive as a tie, and the key-uniqueness expectation then fails on them.

Derived columns carry cross-row and cross-table facts (arithmetic gaps, orphans) as ordinary columns so
that plain GX column expectations can check them; orphan-style columns hold the offending value or null.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
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


RAW_TABLES: dict[str, RawTable] = {
    t.table: t
    for t in [
        RawTable("shop_customers", ("id",), "updated_at desc"),
        RawTable(
            "shop_orders",
            ("id",),
            "updated_at desc",
            derived="""
            latest.total - (latest.subtotal - latest.discount_total + latest.shipping_total + latest.tax_total)
                as total_minus_components,
            case when latest.refunded_total > 0 and latest.status not in ('refunded', 'partially_refunded')
                then latest.status end as refund_status_mismatch,
            case when latest.customer_id is null and nullif(trim(latest.email), '') is null
                then latest.id end as guest_order_without_email,
            case when latest.customer_id is not null and not exists (
                    select 1 from raw.shop_customers as customers where customers.id = latest.customer_id)
                then latest.customer_id end as orphan_customer_id,
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
            derived="""
            case when not exists (select 1 from raw.shop_orders as orders where orders.id = latest.order_id)
                then latest.order_id end as orphan_order_id""",
        ),
        RawTable("shop_fx_rates", ("rate_date", "currency"), "_extracted_at desc", stable_column=None),
        RawTable(
            "helpdesk_users",
            ("id",),
            "updated_at desc",
            derived="""
            case when latest.external_id is not null and not exists (
                    select 1 from raw.shop_customers as customers
                    where customers.id::varchar = trim(latest.external_id))
                then latest.external_id end as unknown_external_id""",
        ),
        RawTable(
            "helpdesk_tickets",
            ("id",),
            "updated_at desc",
            derived="""
            latest.via ->> 'channel' as via_channel,
            latest.satisfaction_rating ->> 'score' as satisfaction_score,
            try_cast(latest.metric_set ->> 'reopens' as bigint) as reopens,
            try_cast(latest.metric_set -> 'reply_time_in_minutes' ->> 'calendar' as bigint) as reply_minutes,
            try_cast(latest.metric_set -> 'full_resolution_time_in_minutes' ->> 'calendar' as bigint)
                as full_resolution_minutes,
            case when latest.requester_id is not null and not exists (
                    select 1 from raw.helpdesk_users as users where users.id = latest.requester_id)
                then latest.requester_id end as orphan_requester_id""",
        ),
        RawTable("esp_contacts", ("contact_id",), "updated_at desc nulls last"),
        RawTable("esp_campaigns", ("campaign_id",), "snapshot_date desc", stable_column=None),
        RawTable(
            "esp_audiences",
            ("campaign_id", "email"),
            "_extracted_at desc",
            stable_column=None,
            derived="""
            case when not exists (
                    select 1 from raw.esp_campaigns as campaigns where campaigns.campaign_id = latest.campaign_id)
                then latest.campaign_id end as unknown_campaign_id""",
        ),
        RawTable(
            "esp_events",
            ("sg_event_id",),
            "_extracted_at desc",
            stable_column=None,
            derived="""
            make_timestamp(latest."timestamp" * 1000000) as event_at,
            case when latest.event = 'bounce' and coalesce(latest.type, '') not in ('bounce', 'blocked')
                then coalesce(latest.type, '(null)') end as unknown_bounce_type,
            case when latest.campaign_id is not null and not exists (
                    select 1 from raw.esp_campaigns as campaigns where campaigns.campaign_id = latest.campaign_id)
                then latest.campaign_id end as unknown_campaign_id""",
        ),
    ]
}

# Volume, in data time (not load time), so a first full load and daily increments are judged alike and a
# rerun that lands nothing changes nothing. A rate over the last RECENT_DAYS calendar days of data (ending on
# the day of the latest record, or of the interval end if that is earlier: a quiet source is not a drop) is
# compared with the rate over the BASELINE_DAYS before them. A source that stops altogether is source
# freshness's business (dbt), not this check's.
# Most tables: records per day, one timestamp per record (`ts`); columns needed in brackets.
VOLUME_PER_DAY: dict[str, tuple[str, tuple[str, ...]]] = {
    "shop_customers": ("select min(created_at) as ts from raw.shop_customers group by id", ("created_at",)),
    "shop_orders": ("select min(created_at) as ts from raw.shop_orders group by id", ("created_at",)),
    "shop_fx_rates": (
        "select distinct rate_date::timestamp as ts, currency from raw.shop_fx_rates", ("rate_date", "currency")
    ),
    "helpdesk_users": ("select min(created_at) as ts from raw.helpdesk_users group by id", ("created_at",)),
    "helpdesk_tickets": ("select min(created_at) as ts from raw.helpdesk_tickets group by id", ("created_at",)),
    "esp_contacts": (
        "select min(created_at) as ts from raw.esp_contacts group by contact_id", ("created_at", "contact_id")
    ),
}
# ESP events come in bursts after each send: per day, every quiet week after a campaign (or a late click
# three weeks on) would look like a drop. They are judged per send instead: delivery webhooks (processed,
# delivered, bounce, dropped, deferred: they arrive within hours) per treated audience member, for the
# campaigns sent in each window (`day` = send date; sends of the last 24 hours before the interval end are
# left out: their webhooks are still arriving). A receiver that loses 90% of the webhooks drops this rate
# by 90%.
VOLUME_PER_SEND: dict[str, str] = {
    "esp_events": """
        with campaigns as (
            select campaign_id, send_at from raw.esp_campaigns
            qualify row_number() over (partition by campaign_id order by snapshot_date desc) = 1
        ),
        treated as (
            select campaign_id, count(*) as recipients from raw.esp_audiences
            where "group" = 'treatment' group by campaign_id
        ),
        delivery as (
            select campaign_id, count(*) as webhooks from raw.esp_events
            where event in ('processed', 'delivered', 'bounce', 'dropped', 'deferred') group by campaign_id
        )
        select campaigns.send_at::date as day, coalesce(delivery.webhooks, 0) as records,
            treated.recipients as exposure
        from campaigns
        join treated on treated.campaign_id = campaigns.campaign_id
        left join delivery on delivery.campaign_id = campaigns.campaign_id
        where campaigns.send_at <= {settled_before}""",
}
VOLUME_PER_SEND_TABLES = ("esp_events", "esp_campaigns", "esp_audiences")
RECENT_DAYS = 7  # a full week, so weekly campaign rhythms do not look like drops
BASELINE_DAYS = 28
MIN_BASELINE_RECORDS = 100  # below this a week-on-month ratio is noise
MIN_QUARANTINE_READ = 50  # quarantine rate judged only on runs that read at least this many records
MIN_EMPTIED_ROWS = 20  # a column empty in fewer new rows than this may be empty by chance


@dataclass(frozen=True)
class Frame:
    suite: str
    queries: tuple[str, ...]  # tried in order: the first that binds is the frame
    relation: str


@dataclass(frozen=True)
class ExportedFrame:
    suite: str
    path: Path
    rows: int
    columns: tuple[str, ...]
    problem: str | None  # why the intended query could not be used (missing table or column)
    relation_missing: bool = False  # nothing bound: the frame is an empty marker


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


def _volume_part(table: str, basis: str, rows_sql: str, end_day: str, *, per_day: bool) -> str:
    """Recent and baseline records and exposure of one table. `rows_sql` gives day, records, exposure;
    per day, the exposure is the number of days in the window; per send, the recipients of its sends."""
    recent = f"day > ref_day - {RECENT_DAYS} and day <= ref_day"
    baseline = f"day > ref_day - {RECENT_DAYS + BASELINE_DAYS} and day <= ref_day - {RECENT_DAYS}"
    recent_exposure = str(RECENT_DAYS) if per_day else f"sum(exposure) filter (where {recent})"
    baseline_exposure = str(BASELINE_DAYS) if per_day else f"sum(exposure) filter (where {baseline})"
    return f"""
            select {lit(table)} as table_name, {lit(basis)} as volume_basis, ref_day, first_day,
                coalesce(sum(records) filter (where {recent}), 0) as recent_records,
                coalesce(sum(records) filter (where {baseline}), 0) as baseline_records,
                {recent_exposure} as recent_exposure, {baseline_exposure} as baseline_exposure
            from (
                select day, records, exposure, min(day) over () as first_day,
                    max(day) filter (where day <= {end_day}) over () as ref_day
                from ({rows_sql}) as records where day is not null
            ) as dated
            group by ref_day, first_day"""


def volume_frame(
    con: duckdb.DuckDBPyConnection, contracts: dict[str, list[str]], *, run_id: str, interval_end: datetime
) -> Frame:
    """One row per raw table: data-time volume ratio, this run's quarantine rate, emptied columns."""
    run = lit(run_id)
    parts_volume, parts_emptied = [], []
    per_send_ready = all(existing_columns(con, "raw", t) for t in VOLUME_PER_SEND_TABLES)
    for table, columns in contracts.items():
        present = existing_columns(con, "raw", table)
        if not present:
            continue
        if table in VOLUME_PER_DAY and set(VOLUME_PER_DAY[table][1]) <= present:
            rows = f"select ts::date as day, 1 as records, null::bigint as exposure from ({VOLUME_PER_DAY[table][0]}) t"
            parts_volume.append(
                _volume_part(table, "records per day", rows, lit(interval_end) + "::date", per_day=True)
            )
        elif table in VOLUME_PER_SEND and per_send_ready:
            rows = VOLUME_PER_SEND[table].format(settled_before=lit(interval_end - timedelta(days=1)))
            parts_volume.append(_volume_part(table, "delivery webhooks per treated recipient", rows,
                                             lit(interval_end) + "::date", per_day=False))
        cols = [c for c in columns if c in present]
        if "_run_id" in present and cols:
            checks = ", ".join(
                f"""case when count("{c}") filter (where _run_id = {run}) = 0
                    and count("{c}") filter (where _run_id <> {run})
                        >= 0.5 * count(*) filter (where _run_id <> {run}) then {lit(c)} end"""
                for c in cols
            )
            parts_emptied.append(f"""
            select {lit(table)} as table_name,
                count(*) filter (where _run_id = {run}) as run_rows,
                count(*) filter (where _run_id <> {run}) as earlier_rows,
                list_filter([{checks}], lambda c: c is not null) as emptied
            from raw.{table}""")
    empty_volume = (
        "select null::varchar as table_name, null::varchar as volume_basis, null::date as ref_day, "
        "null::date as first_day, 0::bigint as recent_records, 0::bigint as baseline_records, "
        "0::bigint as recent_exposure, 0::bigint as baseline_exposure where false"
    )
    empty_emptied = (
        "select null::varchar as table_name, 0::bigint as run_rows, 0::bigint as earlier_rows, "
        "[]::varchar[] as emptied where false"
    )
    tables = ", ".join(lit(t) for t in contracts)
    sql = f"""
        with tables as (select unnest([{tables}]::varchar[]) as table_name),
        volume as ({" union all ".join(parts_volume) or empty_volume}),
        emptied as ({" union all ".join(parts_emptied) or empty_emptied}),
        landed as (
            select tables.table_name, sum(log.rows_read) as rows_read, sum(log.rows_landed) as rows_landed,
                sum(log.rows_quarantined) as rows_quarantined, sum(log.rows_duplicate) as rows_duplicate
            from tables join ops.extraction_log as log
                on log.run_id = {run}
                and (log."table" in (tables.table_name, 'raw.' || tables.table_name)
                     or ends_with(tables.table_name, '_' || log."table"))
            group by tables.table_name
        )
        select tables.table_name,
            landed.rows_read, landed.rows_landed, landed.rows_quarantined, landed.rows_duplicate,
            case when landed.rows_read >= {MIN_QUARANTINE_READ}
                then landed.rows_quarantined / landed.rows_read end as quarantine_rate,
            volume.volume_basis, volume.ref_day, volume.recent_records, volume.baseline_records,
            volume.recent_records / volume.recent_exposure as recent_rate,
            volume.baseline_records / volume.baseline_exposure as baseline_rate,
            case when volume.first_day <= volume.ref_day - {RECENT_DAYS + BASELINE_DAYS - 1}
                    and volume.baseline_records >= {MIN_BASELINE_RECORDS}
                then (volume.recent_records / volume.recent_exposure)
                    / (volume.baseline_records / volume.baseline_exposure)
            end as volume_ratio,
            emptied.run_rows,
            case when emptied.run_rows >= {MIN_EMPTIED_ROWS} and emptied.earlier_rows > 0
                    and len(emptied.emptied) > 0
                then array_to_string(emptied.emptied, ', ') end as emptied_columns
        from tables
        left join volume using (table_name)
        left join emptied using (table_name)
        left join landed using (table_name)
        order by tables.table_name"""
    return Frame(suite="raw_volume", relation="raw.*", queries=(sql,))


VALID_STATUSES = "('paid', 'fulfilled', 'partially_refunded')"

MART_QUERIES: dict[str, str] = {
    "mart_customers": """
        with identity_counts as (
            select customer_id, count(*) as identity_count from marts.customer_identities group by customer_id
        ),
        segment_counts as (
            select customer_id, count(*) as segment_rows from marts.customer_segments group by customer_id
        )
        select customers.*,
            coalesce(identity_counts.identity_count, 0) as identity_count,
            coalesce(segment_counts.segment_rows, 0) as segment_rows,
            customers.avg_order_value_usd - customers.lifetime_revenue_usd / nullif(customers.order_count, 0)
                as avg_order_value_gap_usd
        from marts.customers as customers
        left join identity_counts on identity_counts.customer_id = customers.customer_id
        left join segment_counts on segment_counts.customer_id = customers.customer_id""",
    "mart_customer_identities": """
        select identities.*,
            case when customers.customer_id is null then identities.customer_id end as orphan_customer_id
        from marts.customer_identities as identities
        left join (select distinct customer_id from marts.customers) as customers
            on customers.customer_id = identities.customer_id""",
    "mart_identity_rejected_identifiers": "select * from marts.identity_rejected_identifiers",
    "mart_customer_segments": """
        select segments.*,
            case when customers.customer_id is null then segments.customer_id end as orphan_customer_id,
            case when (segments.rfm_segment = 'No Purchases') <> (coalesce(segments.frequency, 0) = 0)
                then segments.customer_id end as purchase_segment_mismatch
        from marts.customer_segments as segments
        left join (select distinct customer_id from marts.customers) as customers
            on customers.customer_id = segments.customer_id""",
    "mart_segment_summary": "select * from marts.segment_summary",
    "mart_value_concentration": "select * from marts.value_concentration",
    "mart_campaign_performance": """
        select performance.*,
            case when not exists (
                    select 1 from raw.esp_campaigns as campaigns
                    where campaigns.campaign_id = performance.campaign_id::varchar)
                then performance.campaign_id end as unknown_campaign_id
        from marts.campaign_performance as performance""",
    "mart_campaign_segment_performance": """
        with segment_sizes as (
            select campaign_id, sum(treatment_size) + sum(control_size) as segment_audience
            from marts.campaign_segment_performance group by campaign_id
        )
        select segments.*,
            case when campaigns.campaign_id is null then segments.campaign_id end as unknown_campaign_id,
            case when segment_sizes.segment_audience <> campaigns.treatment_size + campaigns.control_size
                then segments.campaign_id end as audience_size_gap
        from marts.campaign_segment_performance as segments
        left join marts.campaign_performance as campaigns on campaigns.campaign_id = segments.campaign_id
        left join segment_sizes on segment_sizes.campaign_id = segments.campaign_id""",
    # One row. Revenue of valid orders is recomputed from raw (latest version of each order, the rate of
    # the order's day or the latest earlier one), independently of the dbt models it reconciles with.
    "mart_reconciliation": f"""
        with latest_orders as (
            select * from raw.shop_orders qualify row_number() over (partition by id order by updated_at desc) = 1
        ),
        valid_orders as (
            select currency, created_at::date as order_date, total - refunded_total as net
            from latest_orders where status in {VALID_STATUSES}
        ),
        rates as (
            select rate_date, currency, usd_per_unit from raw.shop_fx_rates
            qualify row_number() over (partition by rate_date, currency order by _extracted_at desc) = 1
        ),
        valid_orders_usd as (
            select valid_orders.net * coalesce(
                    rates.usd_per_unit, case when valid_orders.currency = 'USD' then 1 end) as net_usd
            from valid_orders asof left join rates
                on rates.currency = valid_orders.currency and valid_orders.order_date >= rates.rate_date
        ),
        orders_total as (
            select coalesce(sum(net_usd), 0)::double as revenue_usd,
                count(*) filter (where net_usd is null) as without_rate
            from valid_orders_usd
        ),
        customers_total as (
            select coalesce(sum(lifetime_revenue_usd), 0)::double as revenue_usd, count(*) as customers
            from marts.customers
        ),
        segments_total as (
            select coalesce(sum(revenue_usd), 0)::double as revenue_usd, sum(customers) as customers,
                sum(revenue_share) as revenue_share_total
            from marts.segment_summary
        ),
        high_tier as (
            select coalesce(sum(customers.lifetime_revenue_usd), 0)::double as revenue_usd
            from marts.customer_segments as segments
            join marts.customers as customers on customers.customer_id = segments.customer_id
            where segments.value_tier = 'high'
        )
        select
            orders_total.revenue_usd as valid_orders_revenue_usd,
            customers_total.revenue_usd as customers_revenue_usd,
            segments_total.revenue_usd as segments_revenue_usd,
            greatest(0.01 * customers_total.customers, 0.01) as revenue_tolerance_usd,
            abs(customers_total.revenue_usd - orders_total.revenue_usd) as customers_vs_orders_gap_usd,
            abs(segments_total.revenue_usd - customers_total.revenue_usd) as segments_vs_customers_gap_usd,
            coalesce(segments_total.customers, 0) - customers_total.customers as segment_customers_gap,
            case when segments_total.revenue_usd > 0 then segments_total.revenue_share_total end
                as revenue_share_total,
            (select top_20pct_revenue_share from marts.value_concentration limit 1)
                - high_tier.revenue_usd / nullif(customers_total.revenue_usd, 0) as high_tier_share_gap,
            orders_total.without_rate as valid_orders_without_rate
        from orders_total, customers_total, segments_total, high_tier""",
}


def mart_frame(spec: SuiteSpec) -> Frame:
    sql = MART_QUERIES[spec.name]
    queries = [sql]
    if spec.relation.startswith("marts.") and "," not in spec.relation:
        queries.append(f"select * from {spec.relation}")
    return Frame(suite=spec.name, relation=spec.relation, queries=tuple(queries))


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


def export_frame(con: duckdb.DuckDBPyConnection, frame: Frame, path: Path) -> ExportedFrame:
    """Write the first query of `frame` that binds to `path`; an empty marker frame if none does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    problem = None
    for i, sql in enumerate(frame.queries):
        try:
            described = con.execute(f"describe {sql}").fetchall()
        except (duckdb.CatalogException, duckdb.BinderException) as exc:
            if problem is None:
                problem = _first_line(exc)
            continue
        casts = [(name, _export_cast(name, duck_type)) for name, duck_type, *_ in described]
        select = ", ".join(f'{cast} as "{name}"' if cast else f'"{name}"' for name, cast in casts)
        con.execute(f"copy (select {select} from ({sql}) as frame) to {lit(str(path))} (format parquet)")
        rows = con.execute(f"select count(*) from read_parquet({lit(str(path))})").fetchall()[0][0]
        return ExportedFrame(
            frame.suite, path, rows, tuple(n for n, _ in casts), problem if i > 0 else None
        )
    # Nothing binds (the relation is missing): an empty frame fails every column expectation.
    con.execute(
        f"copy (select null::varchar as _relation_missing where false) to {lit(str(path))} (format parquet)"
    )
    return ExportedFrame(
        frame.suite, path, 0, ("_relation_missing",), problem or f"{frame.relation} missing", relation_missing=True
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def contracts_by_table(specs: Iterable[SuiteSpec]) -> dict[str, list[str]]:
    return {
        s.relation.removeprefix("raw."): s.contract_columns
        for s in specs
        if s.relation.removeprefix("raw.") in RAW_TABLES
    }
