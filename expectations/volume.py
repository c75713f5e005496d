"""raw_volume's frame: one row per raw table with its data-time volume ratio, this run's quarantine rate
and the columns this run's rows left empty (see docs/quality.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from rapport.expectations.frames import Frame, existing_columns, lit

# Volume, in data time (not load time), so a first full load and daily increments are judged alike and a
# rerun that lands nothing changes nothing. A rate over the last RECENT_DAYS calendar days of data (ending on
# the day of the latest record, or of the interval end if that is earlier: a quiet source is not a drop) is
# compared with the rate over the BASELINE_DAYS before them. A source that stops altogether, or loses what
# it held, is the source checks' business at extraction (rapport.extractors.source_health), not this check's.
# Most tables: records per day, one timestamp per record (`ts`); columns needed in brackets.
VOLUME_PER_DAY: dict[str, tuple[str, tuple[str, ...]]] = {
    "shop_customers": ("select min(created_at) as ts from raw.shop_customers group by id", ("created_at",)),
    "shop_orders": ("select min(created_at) as ts from raw.shop_orders group by id", ("created_at",)),
    "shop_fx_rates": (
        "select distinct rate_date::timestamp as ts, currency from raw.shop_fx_rates",
        ("rate_date", "currency"),
    ),
    "helpdesk_users": ("select min(created_at) as ts from raw.helpdesk_users group by id", ("created_at",)),
    "helpdesk_tickets": ("select min(created_at) as ts from raw.helpdesk_tickets group by id", ("created_at",)),
    "esp_contacts": (
        "select min(created_at) as ts from raw.esp_contacts group by contact_id",
        ("created_at", "contact_id"),
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
RECENT_DAYS = 7  # a full week: weekday rhythms even out
BASELINE_DAYS = 28
MIN_BASELINE_RECORDS = 100  # below this a week-on-month ratio is noise
MIN_QUARANTINE_READ = 50  # quarantine rate judged only on runs that read at least this many records
MIN_EMPTIED_ROWS = 20  # a column empty in fewer new rows than this may be empty by chance


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


def _emptied_row(con: duckdb.DuckDBPyConnection, table: str, columns: list[str], run_id: str) -> str:
    """One row (a select of literals) for `emptied`: this run's rows in `table`, the earlier rows, and the
    `columns` empty in every row of this run but filled in at least half of the earlier rows.

    In two steps, so that the whole table is read only for what can be reported: first this run's rows, then,
    if there are at least MIN_EMPTIED_ROWS of them and some column is empty in all of them, the earlier rows'
    count and those columns' fill (a column this run filled, or a run too small to judge, is never reported,
    whatever the earlier rows hold). At 1M people the earlier rows of every column were ~1.2 s of the raw
    gate's CPU on a 1% day (docs/quality.md)."""
    filled = ", ".join(f'count("{c}")' for c in columns)
    run_rows, *run_filled = con.execute(
        f"select count(*), {filled} from raw.{table} where _run_id = ?", [run_id]
    ).fetchone()  # type: ignore[misc]
    unfilled = [c for c, n in zip(columns, run_filled, strict=True) if n == 0]
    earlier_rows, emptied = None, []
    if run_rows >= MIN_EMPTIED_ROWS and unfilled:
        earlier = ", ".join(f'count("{c}")' for c in unfilled)
        earlier_rows, *earlier_filled = con.execute(
            f"select count(*), {earlier} from raw.{table} where _run_id <> ?", [run_id]
        ).fetchone()  # type: ignore[misc]
        emptied = [c for c, n in zip(unfilled, earlier_filled, strict=True) if n >= 0.5 * earlier_rows]
    listed = ", ".join(lit(c) for c in emptied)
    return (
        f"select {lit(table)} as table_name, {run_rows}::bigint as run_rows, "
        f"{'null' if earlier_rows is None else earlier_rows}::bigint as earlier_rows, [{listed}]::varchar[] as emptied"
    )


def volume_frame(
    con: duckdb.DuckDBPyConnection, contracts: dict[str, list[str]], *, run_id: str, interval_end: datetime
) -> Frame:
    """One row per raw table: data-time volume ratio, this run's quarantine rate, emptied columns (the last
    counted here, the rest when the frame is exported)."""
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
            parts_volume.append(
                _volume_part(
                    table, "delivery webhooks per treated recipient", rows, lit(interval_end) + "::date", per_day=False
                )
            )
        cols = [c for c in columns if c in present]
        if "_run_id" in present and cols:
            parts_emptied.append(_emptied_row(con, table, cols, run_id))
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
