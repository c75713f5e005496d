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
    # the log step's copy of the registry (it keeps recorded_at to tell an unwritten registration)
    "intermediate.segment_history__state_dates": "recorded_at",
    # the ids' latest build time that marts.customers last read (its increment's watermark)
    "intermediate.customers__seen_assignments": "last_assigned_at",
    # and the one int_campaign_members last read
    "intermediate.int_campaign_members__seen_assignments": "last_assigned_at",
    # and the one int_orders_enriched last read
    "intermediate.int_orders_enriched__seen_assignments": "last_assigned_at",
    # and the one int_email_customers last read
    "intermediate.int_email_customers__seen_assignments": "last_assigned_at",
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
    # int_orders_enriched's touched orders (docs/marts-incremental.md "int_orders_enriched"), each edit one
    # branch of its rule besides (a), an order version landed (the refunds and cancellations here):
    # (c) a rate lands late for an old date that had none: the creation day of the oldest valid guest order
    # (no other edit here touches its record) whose rate in force was an earlier day's, as that earlier rate
    # plus 25%: the order's usd_per_unit and net_revenue_usd change though no version of it landed and its
    # customer's records did not change (a date the source has no rate for, so the next extraction lands
    # nothing over it)
    """insert into raw.shop_fx_rates
       with late as (
           select currency, cast(created_at as date) as rate_date, fx_rate_date
           from intermediate.int_orders_enriched
           where is_valid and is_guest and currency <> 'USD' and cast(created_at as date) > fx_rate_date
           order by created_at, order_id limit 1)
       select f.* replace (
           l.rate_date as rate_date, f.usd_per_unit * 1.25 as usd_per_unit, '{run}' as _run_id,
           now()::timestamp as _extracted_at)
       from raw.shop_fx_rates as f
       inner join late as l on upper(trim(f.currency)) = l.currency and f.rate_date = l.fx_rate_date
       qualify row_number() over (order by f._extracted_at desc) = 1""",
    # (b) a guest order is matched later: the second-oldest shop account takes the email of the newest valid
    # guest order whose email no other record carries; the guest's cluster merges into the account's, older,
    # whose id it keeps: the guest order moves to the account's customer though no version of it landed
    """insert into raw.shop_customers select s.* replace (
           (select o.email from intermediate.int_orders_enriched as o
            where o.is_guest and o.is_valid and o.email_normalized is not null
                and o.email_normalized not in (
                    select r.email_normalized from intermediate.int_identity_records_unioned as r
                    where r.email_normalized is not null and r.record_id <> 'orders.guest_order:' || o.order_id)
            order by o.created_at desc, o.order_id limit 1) as email,
           s.updated_at + interval 1 day as updated_at, '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_customers as s
       where s.id = (select id from raw.shop_customers order by created_at, id limit 1 offset 1)
       qualify row_number() over (order by s.updated_at desc, s._extracted_at desc) = 1""",
    # int_campaign_members' touched members (docs/identity-day-costs.md section 7): the edits below each need
    # one branch of its rule; the newest campaign gets no audience row, so its members are not all recomputed.
    # (New orders take ids far above the source's, which a later demo day keeps numbering from its own.)
    # (c) a paid (or fulfilled) order of a member of the newest campaign, created in its pre-period (90 days
    # before the send), is refunded: its pre_orders and pre_revenue_usd change (and here its segment: (d) too)
    """insert into raw.shop_orders select * replace (
           'refunded' as status, total as refunded_total, updated_at + interval 30 day as updated_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_orders where id = (
           select max(o.id) from raw.shop_orders as o
           inner join raw.shop_customers as s on o.customer_id = s.id
           inner join raw.esp_audiences as a on lower(trim(a.email)) = lower(trim(s.email))
           inner join raw.esp_campaigns as c on a.campaign_id = c.campaign_id
           where a.campaign_id = (select max(campaign_id) from raw.esp_audiences) and o.status in ('paid', 'fulfilled')
               and o.created_at >= c.send_at - interval 90 day and o.created_at < c.send_at)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # (a) an audience row of the oldest campaign re-lands in the other group: the same record (no id changes)
    """insert into raw.esp_audiences select * replace (
           case "group" when 'treatment' then 'control' else 'treatment' end as "group",
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.esp_audiences where campaign_id = (select min(campaign_id) from raw.esp_events)
       qualify row_number() over (order by email desc, _extracted_at desc) = 1""",
    # (c) alone: an order of a member of the newest campaign, created in the week after the send (its holdout
    # window: after the send scope's cutoff, so no segment moves), is cancelled
    """insert into raw.shop_orders select * replace (
           'cancelled' as status, updated_at + interval 1 day as updated_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_orders where id = (
           select max(o.id) from raw.shop_orders as o
           inner join raw.esp_audiences as a on lower(trim(a.email)) = lower(trim(o.email))
           inner join raw.esp_campaigns as c on a.campaign_id = c.campaign_id
           where a.campaign_id = (select max(campaign_id) from raw.esp_audiences)
               and o.status in ('paid', 'fulfilled')
               and o.created_at >= c.send_at and o.created_at < c.send_at + interval 7 day)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # (b) alone: a late cancelled guest order carries the email of a member of the newest campaign whose customer
    # has no orders, and the phone of an older shop account: the two customers merge, the older keeps its id, and
    # that member moves to it (no valid order changes, so only the ids' recomputed pairs find the member)
    """insert into raw.shop_orders select * replace (
           (select max(id) + 1000000 from raw.shop_orders) as id, 'cancelled' as status,
           (select min(m.email) from intermediate.int_campaign_members as m
            where m.campaign_id = (select max(campaign_id) from raw.esp_audiences) and m.customer_id not in (
                    select o.customer_id from intermediate.int_orders_enriched as o where o.customer_id is not null)
                and m.customer_id in (
                    select a.customer_id from intermediate.int_customer_ids_assigned as a
                    inner join intermediate.int_identity_records_unioned as r on a.record_id = r.record_id
                    where a.is_current group by 1
                    having min(r.first_seen_at)
                        > (select min(created_at) from raw.shop_customers where phone like '+%')))
               as email,
           (select phone from raw.shop_customers where phone like '+%' order by created_at, updated_at desc limit 1)
               as phone,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_orders where id = (select min(id) from raw.shop_orders where customer_id is null)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    # (d) alone, with the next edit: a late order of a new buyer (in no audience) created the day before the
    # newest campaign's send, and the oldest buyer before that send who is in no audience and had one order
    # then cancels it: the send scope's recency ranks shift, and a member's pre-send segment moves without an
    # order of its own (at 300 demo people: 'About to Sleep' -> 'Hibernating')
    """insert into raw.shop_orders select * replace (
           (select max(id) + 1000000 from raw.shop_orders) as id, 'fulfilled' as status,
           'late.buyer@example.com' as email, null as phone,
           (select max(send_at) - interval 1 day from raw.esp_campaigns
            where campaign_id = (select max(campaign_id) from raw.esp_audiences)) as created_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_orders where id = (select min(id) from raw.shop_orders where customer_id is null)
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
    """insert into raw.shop_orders select * replace (
           'cancelled' as status, updated_at + interval 1 day as updated_at,
           '{run}' as _run_id, now()::timestamp as _extracted_at)
       from raw.shop_orders where id = (
           with send as (
               select max(send_at) as send_at from raw.esp_campaigns
               where campaign_id = (select max(campaign_id) from raw.esp_audiences)),
           before_send as (
               select o.order_id, o.customer_id, o.created_at from intermediate.int_orders_enriched as o
               where o.is_valid and o.customer_id is not null and o.created_at < (select send_at from send))
           select min_by(order_id, created_at) from before_send
           where customer_id not in (
                   select m.customer_id from intermediate.int_campaign_members as m
                   where m.campaign_id = (select max(campaign_id) from raw.esp_audiences)
                       and m.customer_id is not null)
               and customer_id in (select customer_id from before_send group by 1 having count(*) = 1))
       qualify row_number() over (order by updated_at desc, _extracted_at desc) = 1""",
]

# Rows each staging table gets from HAND_EDITS (the edits land distinct records): six order versions (two
# refunds, two cancellations, two late orders), two audience rows, two shop account versions, one of each
# other record.
HAND_LANDED = {"stg_shop__orders": 6, "stg_esp__events": 1, "stg_esp__audiences": 2, "stg_helpdesk__tickets": 1,
               "stg_esp__contacts": 1, "stg_shop__customers": 2, "stg_shop__fx_rates": 1}  # fmt: skip
