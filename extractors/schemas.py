"""The warehouse's landing layout: raw tables, quarantine tables and ops tables.

This is the interface between the extractors and the dbt project (`dbt_project/models/staging/_sources.yml`
names exactly these tables). Raw tables hold what the source said, typed but not cleaned, one row per
*version* of a source record, plus load metadata:

- `_run_id`      the run that landed the row
- `_extracted_at` when it was landed (UTC)
- `_source`      where it came from: `table:<name>` for the orders DB, the page cursor for the helpdesk,
                 `<relative file path>:<line>` for ESP files
- `_extra`       JSON of fields the source sent that this layout does not name (schema drift is kept)

All timestamps are naive `TIMESTAMP` values in UTC.
"""

from __future__ import annotations

META = "_run_id varchar not null, _extracted_at timestamp not null, _source varchar, _extra json"

# table name -> (column DDL, natural key of one landed version)
RAW_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    # orders database (one row per version: the same id re-lands when updated_at moves)
    "shop_customers": (
        "id bigint not null, email varchar, first_name varchar, last_name varchar, phone varchar, "
        "country varchar, accepts_marketing boolean, created_at timestamp, updated_at timestamp not null",
        ("id", "updated_at"),
    ),
    "shop_orders": (
        "id bigint not null, customer_id bigint, email varchar, phone varchar, status varchar, "
        "currency varchar, subtotal decimal(14,2), discount_total decimal(14,2), shipping_total decimal(14,2), "
        "tax_total decimal(14,2), total decimal(14,2), refunded_total decimal(14,2), discount_code varchar, "
        "utm_source varchar, utm_medium varchar, utm_campaign varchar, created_at timestamp, "
        "updated_at timestamp not null, cancelled_at timestamp",
        ("id", "updated_at"),
    ),
    # order_items have no updated_at: landed with their order, keyed on id (latest landing wins)
    "shop_order_items": (
        "id bigint not null, order_id bigint not null, sku varchar, product_name varchar, category varchar, "
        "quantity integer, unit_price decimal(14,2)",
        ("id",),
    ),
    "shop_fx_rates": (
        "rate_date date not null, currency varchar not null, usd_per_unit decimal(18,8)",
        ("rate_date", "currency"),
    ),
    # helpdesk incremental export (an item that changed again re-lands with its new updated_at)
    "helpdesk_users": (
        "id bigint not null, name varchar, email varchar, phone varchar, role varchar, external_id varchar, "
        "created_at timestamp, updated_at timestamp not null",
        ("id", "updated_at"),
    ),
    "helpdesk_tickets": (
        "id bigint not null, requester_id bigint, assignee_id bigint, subject varchar, status varchar, "
        "priority varchar, via json, tags json, satisfaction_rating json, metric_set json, "
        "created_at timestamp, updated_at timestamp not null",
        ("id", "updated_at"),
    ),
    # ESP exports
    "esp_contacts": (  # one row per contact version (contact_id, updated_at) seen in any daily snapshot
        "contact_id varchar not null, email varchar, first_name varchar, last_name varchar, status varchar, "
        "created_at timestamp, updated_at timestamp, snapshot_date date not null",
        ("contact_id", "updated_at"),
    ),
    "esp_campaigns": (  # one row per campaign version seen in the daily snapshots
        "campaign_id varchar not null, name varchar, subject varchar, send_at timestamp, "
        "target_segment varchar, holdout_pct double, cost decimal(14,2), cost_currency varchar, "
        "snapshot_date date not null",
        ("campaign_id", "snapshot_date"),
    ),
    "esp_audiences": (
        'campaign_id varchar not null, email varchar not null, "group" varchar not null',
        ("campaign_id", "email"),
    ),
    "esp_events": (  # de-duplicated on sg_event_id (webhook retries)
        "sg_event_id varchar not null, email varchar, timestamp bigint, event varchar, sg_message_id varchar, "
        "campaign_id varchar, url varchar, useragent varchar, ip varchar, sg_machine_open boolean, "
        "type varchar, reason varchar, asm_group_id bigint",
        ("sg_event_id",),
    ),
}

QUARANTINE_COLUMNS = (
    "source varchar not null, raw varchar, reason varchar not null, location varchar, "
    "run_id varchar not null, rejected_at timestamp not null"
)

OPS_DDL = [
    "create schema if not exists ops",
    """create table if not exists ops.runs (
        run_id varchar primary key, started_at timestamp not null, finished_at timestamp, status varchar not null,
        data_interval_start timestamp, data_interval_end timestamp, as_of_date date,
        orders_extracted bigint, orders_quarantined bigint, helpdesk_extracted bigint,
        helpdesk_quarantined bigint, esp_extracted bigint, esp_quarantined bigint, error varchar)""",
    # added later (older warehouses get them here): records held back as dated in the future, late commits
    # found by the orders reconciliation, and each source's warnings (source_health), one per line
    *(
        f"alter table ops.runs add column if not exists {c}"
        for c in (
            "orders_future_dated bigint",
            "helpdesk_future_dated bigint",
            "orders_reconciled bigint",
            "orders_warnings varchar",
            "helpdesk_warnings varchar",
            "esp_warnings varchar",
        )
    ),
    """create table if not exists ops.extraction_log (
        run_id varchar not null, source varchar not null, "table" varchar not null,
        rows_read bigint, rows_landed bigint, rows_quarantined bigint, rows_duplicate bigint,
        started_at timestamp, duration_s double)""",
    # watermarks, cursors: written in the same transaction as the rows they describe
    """create table if not exists ops.extract_state (
        source varchar not null, key varchar not null, value varchar, run_id varchar, updated_at timestamp,
        primary key (source, key))""",
    # every change of a state value, so that a run whose raw data failed its checks can be undone
    """create table if not exists ops.extract_state_history (
        source varchar not null, key varchar not null, old_value varchar, old_run_id varchar,
        old_updated_at timestamp, new_value varchar, run_id varchar not null, changed_at timestamp not null)""",
    # runs whose landed raw data was undone after failing the raw checks (rapport.extractors.rollback)
    """create table if not exists ops.raw_rollbacks (
        run_id varchar not null, rolled_back_by varchar not null, rolled_back_at timestamp not null,
        raw_rows bigint, rejects bigint)""",
    """create table if not exists ops.esp_manifest (
        path varchar primary key, size bigint, sha256 varchar, rows_read bigint, loaded_at timestamp,
        run_id varchar)""",
    # what each export file's stat was when its content was last hashed: unchanged files are skipped unread
    # (a cache, not state: rapport.extractors.esp_file_stats)
    """create table if not exists ops.esp_file_stats (
        path varchar primary key, size bigint, mtime_ns bigint, ctime_ns bigint, sha256 varchar)""",
]


def raw_ddl() -> list[str]:
    stmts = ["create schema if not exists raw", "create schema if not exists quarantine", *OPS_DDL]
    for name, (cols, _key) in RAW_TABLES.items():
        stmts.append(f"create table if not exists raw.{name} ({cols}, {META})")
        stmts.append(f"create table if not exists quarantine.{name}_rejects ({QUARANTINE_COLUMNS})")
    return stmts
