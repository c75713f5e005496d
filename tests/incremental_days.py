"""What the incremental-day tests share: raw rows a source would land on a later day, and the history
columns that hold build times (tests/integration/test_incremental_equals_full.py, tests/dbt/test_dbt_threads.py)."""

from __future__ import annotations

# when a build wrote a row of the history tables (wall-clock, so different in the rebuild made after it), and
# which build last computed an id assignment (an incremental build computes only the clusters whose id can
# change, a --full-refresh one every cluster: last_assigned_run_id differs by design; the ids do not)
BUILD_TIMES = {
    "intermediate.int_customer_ids_assigned": "first_assigned_at, last_assigned_at, last_assigned_run_id",
    "marts.customer_id_history": "first_assigned_at, last_assigned_at, retired_at",
    "marts.segment_history": "recorded_at",
    "marts.segment_history_dates": "recorded_at",
    # the ids' latest build time that marts.customers last read (its increment's watermark)
    "intermediate.customers__seen_assignments": "last_assigned_at",
}

# Raw rows a source would land on a later day, each a new version of an existing record (or a late file).
HAND_EDITS = [
    # an old paid order is refunded
    """insert into raw.shop_orders select * replace (
           'refunded' as status, total as refunded_total, updated_at + interval 30 day as updated_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_orders where id = (select min(id) from raw.shop_orders where status = 'paid')
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # a late ESP file: a click on the oldest campaign, from someone in its audience
    """insert into raw.esp_events select * replace (
           'late-' || sg_event_id as sg_event_id, 'click' as event, "timestamp" + 3600 as "timestamp",
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.esp_events
       where campaign_id = (select min(campaign_id) from raw.esp_events) and event = 'delivered'
       qualify row_number() over (order by sg_event_id) = 1""",
    # a late audience row of that campaign
    """insert into raw.esp_audiences select * replace (
           'late.member@example.com' as email, '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.esp_audiences where campaign_id = (select min(campaign_id) from raw.esp_events)
       qualify row_number() over (order by email) = 1""",
    # a helpdesk ticket is solved
    """insert into raw.helpdesk_tickets select * replace (
           'solved' as status, updated_at + interval 2 day as updated_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.helpdesk_tickets where id = (select min(id) from raw.helpdesk_tickets)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # an ESP contact unsubscribes
    """insert into raw.esp_contacts select * replace (
           'unsubscribed' as status, updated_at + interval 1 day as updated_at, snapshot_date + 1 as snapshot_date,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.esp_contacts where contact_id = (select min(contact_id) from raw.esp_contacts)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # the newest shop account takes the oldest account's email: the two customers merge
    """insert into raw.shop_customers select n.* replace (
           (select email from raw.shop_customers where id = (select min(id) from raw.shop_customers) limit 1)
               as email,
           n.updated_at + interval 1 day as updated_at, '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_customers as n where n.id = (select max(id) from raw.shop_customers)
       qualify row_number() over (order by n.updated_at desc, n._extracted_at desc) = 1""",
]
