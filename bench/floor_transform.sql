-- The floor for transformation: one hand-written DuckDB SQL script that computes marts.customers and
-- marts.campaign_performance from the raw tables, without dbt (bench/run.py times it against `dbt build`
-- of the same two models and their parents, and checks that both give the same rows).
--
-- It does the same work the dbt models do (same definitions, same customer ids on a first build) and no
-- more: no tests, no models the two marts don't need (segments, order items, contact status history),
-- intermediate results as temp tables, and no re-deduplication of raw tables whose natural key is
-- already unique (events on sg_event_id, audiences on (campaign_id, email)). Identity components are
-- found by the same min-label propagation with pointer jumping, iterated until nothing changes instead
-- of a fixed number of steps.
--
-- Runs against a database that has the working warehouse attached as `w` (read only); writes schema
-- `floor`. Needs the Python UDFs normalize_phone and phone_region (rapport.transform.udfs.register) and erfc
-- (math.erfc; DuckDB has no normal CDF). Sections start with `-- @section <name>`; the runner repeats
-- section `propagate` until no label changes. Parameters (dbt vars' defaults): max_fanout,
-- attribution_hours, holdout_days, z (the normal quantile of the confidence level).

-- @section setup
create schema if not exists floor;

create or replace temp macro norm_email_local(local_part, domain) as (
    case
        when domain in ('gmail.com', 'googlemail.com') then replace(split_part(local_part, '+', 1), '.', '')
        when domain in ('outlook.com', 'hotmail.com', 'live.com', 'icloud.com', 'me.com', 'mac.com',
                        'fastmail.com', 'fastmail.fm', 'proton.me', 'protonmail.com', 'pm.me')
            then split_part(local_part, '+', 1)
        else local_part
    end
);

create or replace temp macro norm_email_parts(local_part, domain) as (
    case
        when norm_email_local(local_part, domain) = '' then null
        else norm_email_local(local_part, domain) || '@'
            || case when domain in ('gmail.com', 'googlemail.com') then 'gmail.com' else domain end
    end
);

create or replace temp macro norm_email(x) as (
    case
        when not regexp_full_match(
            lower(trim(coalesce(cast(x as varchar), ''), ' ' || chr(9) || chr(10) || chr(13))),
            '[^@\s]+@[^@\s.]+(\.[^@\s.]+)+'
        ) then null
        else norm_email_parts(
            split_part(lower(trim(coalesce(cast(x as varchar), ''), ' ' || chr(9) || chr(10) || chr(13))), '@', 1),
            split_part(lower(trim(coalesce(cast(x as varchar), ''), ' ' || chr(9) || chr(10) || chr(13))), '@', 2)
        )
    end
);

-- @section staging
create or replace temp table shop_customers as
select
    id as customer_id, email, phone, created_at, updated_at,
    nullif(trim(concat_ws(' ', trim(first_name), trim(last_name))), '') as full_name,
    nullif(upper(trim(country)), '') as country,
    norm_email(email) as email_normalized,
    normalize_phone(phone, nullif(upper(trim(country)), '')) as phone_normalized
from w.raw.shop_customers
qualify row_number() over (partition by id order by updated_at desc, _extracted_at desc, _source desc) = 1;

create or replace temp table shop_orders as
select
    id as order_id, customer_id, email, phone, lower(trim(status)) as status, upper(trim(currency)) as currency,
    total, coalesce(refunded_total, 0) as refunded_total, created_at, updated_at,
    norm_email(email) as email_normalized,
    normalize_phone(phone, null) as phone_normalized
from w.raw.shop_orders
qualify row_number() over (partition by id order by updated_at desc, _extracted_at desc, _source desc) = 1;

create or replace temp table fx_rates as
select rate_date, upper(trim(currency)) as currency, usd_per_unit
from w.raw.shop_fx_rates
qualify row_number() over (
    partition by rate_date, upper(trim(currency)) order by _extracted_at desc, _source desc) = 1;

create or replace temp table helpdesk_users as
select
    id as user_id, email, phone, created_at, updated_at, nullif(trim(name), '') as full_name,
    nullif(trim(external_id), '') as external_id,
    norm_email(email) as email_normalized,
    normalize_phone(phone, null) as phone_normalized
from w.raw.helpdesk_users
qualify row_number() over (partition by id order by updated_at desc, _extracted_at desc, _source desc) = 1
    and lower(trim(role)) = 'end-user';

create or replace temp table helpdesk_tickets as
select
    requester_id, lower(trim(status)) as status,
    lower(satisfaction_rating ->> '$.score') as satisfaction_score,
    try_cast(metric_set ->> '$.full_resolution_time_in_minutes.calendar' as integer) as full_resolution_minutes
from w.raw.helpdesk_tickets
qualify row_number() over (partition by id order by updated_at desc, _extracted_at desc, _source desc) = 1;

create or replace temp table esp_contacts as
select
    contact_id, email, lower(trim(status)) as status,
    coalesce(created_at, updated_at, _extracted_at) as first_seen_at,
    coalesce(updated_at, _extracted_at) as updated_at,
    nullif(trim(concat_ws(' ', trim(first_name), trim(last_name))), '') as full_name,
    norm_email(email) as email_normalized
from w.raw.esp_contacts
qualify row_number() over (
    partition by contact_id
    order by updated_at desc nulls last, snapshot_date desc, _extracted_at desc, _source desc) = 1;

create or replace temp table esp_campaigns as
select
    campaign_id, name, subject, send_at, target_segment, holdout_pct, cost,
    upper(trim(cost_currency)) as cost_currency
from w.raw.esp_campaigns
qualify row_number() over (
    partition by campaign_id order by snapshot_date desc, _extracted_at desc, _source desc) = 1;

-- raw.esp_events is unique on sg_event_id (the extractor merges on it): no re-deduplication
create or replace temp table esp_events as
select
    campaign_id, lower(trim(event)) as event, lower(trim(email)) as recipient_key,
    norm_email(email) as email_normalized,
    make_timestamp(cast("timestamp" as bigint) * 1000000) as event_at,
    coalesce(sg_machine_open, false) as is_machine_open,
    email is not null as has_email, sg_event_id
from w.raw.esp_events;

-- @section identity
create or replace temp table records as
with unioned as (
    select 'orders.customer' as source, cast(customer_id as varchar) as source_id, true as is_account_like,
        coalesce(created_at, updated_at) as first_seen_at, updated_at, email, email_normalized,
        phone_normalized, cast(customer_id as varchar) as shop_customer_key, full_name, country
    from shop_customers
    union all
    select 'orders.customer', cast(customer_id as varchar), true, coalesce(min(created_at), min(updated_at)),
        max(updated_at), null, null, null, cast(customer_id as varchar), null, null
    from shop_orders
    where customer_id is not null and customer_id not in (select customer_id from shop_customers)
    group by customer_id
    union all
    select 'orders.guest_order', cast(order_id as varchar), false, coalesce(created_at, updated_at), updated_at,
        email, email_normalized, phone_normalized, null, null, null
    from shop_orders where customer_id is null
    union all
    select 'helpdesk.user', cast(user_id as varchar), true, coalesce(created_at, updated_at), updated_at,
        email, email_normalized, phone_normalized, external_id, full_name, null
    from helpdesk_users
    union all
    select 'esp.contact', contact_id, true, first_seen_at, updated_at, email, email_normalized, null, null,
        full_name, null
    from esp_contacts
    union all
    select 'esp.audience_member', a.campaign_id || ':' || a.email, false, coalesce(c.send_at, a._extracted_at),
        a._extracted_at, a.email, norm_email(a.email), null, null, null, null
    from w.raw.esp_audiences as a
    left join esp_campaigns as c on a.campaign_id = c.campaign_id
)
select
    source || ':' || source_id as record_id, source, source_id,
    case source when 'orders.customer' then 1 when 'helpdesk.user' then 2 when 'esp.contact' then 3
        when 'orders.guest_order' then 4 else 5 end as source_priority,
    row_number() over (order by first_seen_at nulls last,
        case source when 'orders.customer' then 1 when 'helpdesk.user' then 2 when 'esp.contact' then 3
            when 'orders.guest_order' then 4 else 5 end, source_id) as record_rank,
    *
from unioned;

create or replace temp table identifiers as
select record_rank, 'email' as identifier_type, email_normalized as identifier_value, is_account_like
from records where email_normalized is not null
union all
select record_rank, 'phone', phone_normalized, is_account_like from records where phone_normalized is not null
union all
select record_rank, 'shop_customer_id', shop_customer_key, is_account_like
from records where shop_customer_key is not null;

create or replace temp table rejected as
with account_fanout as (
    select identifier_type, identifier_value,
        count(distinct record_rank) filter (where is_account_like) as account_records,
        count(distinct record_rank) as records
    from identifiers group by all
),
phone_emails as (
    select phone_normalized, count(distinct email_normalized) as distinct_emails
    from (
        select phone_normalized, email_normalized from records
        where phone_normalized is not null and email_normalized is not null
        union
        select phone_normalized, email_normalized from shop_orders
        where phone_normalized is not null and email_normalized is not null
    )
    group by phone_normalized
)
select a.identifier_type, a.identifier_value, a.records,
    a.account_records > ${max_fanout} or coalesce(p.distinct_emails, 0) > ${max_fanout} as is_rejected
from account_fanout as a
left join phone_emails as p on a.identifier_type = 'phone' and a.identifier_value = p.phone_normalized;

create or replace temp table edges as
with linking as (
    select identifier_type, identifier_value,
        dense_rank() over (order by identifier_type, identifier_value) as ident
    from rejected where not is_rejected and records > 1
)
select distinct i.record_rank as node, l.ident
from identifiers as i
inner join linking as l using (identifier_type, identifier_value);

create or replace temp table labels as select distinct node, node as label from edges;

-- @section propagate
create or replace temp table labels_next as
with ident_labels as (
    select e.ident, min(l.label) as label
    from edges as e inner join labels as l on e.node = l.node
    group by e.ident
),
stepped as materialized (
    select l.node, least(l.label, coalesce(min(i.label), l.label)) as label
    from labels as l
    left join edges as e on l.node = e.node
    left join ident_labels as i on e.ident = i.ident
    group by l.node, l.label
)
select s.node, least(s.label, j.label) as label
from stepped as s inner join stepped as j on s.label = j.node;

-- @section assign
create or replace temp table assignments as
with anchored as (
    select r.record_id, r.source, r.source_id, coalesce(l.label, r.record_rank) as anchor_rank
    from records as r left join labels as l on r.record_rank = l.node
)
select a.record_id, a.source, a.source_id, 'c' || left(md5(anchor.record_id), 16) as customer_id
from anchored as a inner join records as anchor on a.anchor_rank = anchor.record_rank;

create or replace temp table email_customers as
select r.email_normalized, min(a.customer_id) as customer_id
from records as r
inner join assignments as a using (record_id)
where r.email_normalized is not null
    and r.email_normalized not in (
        select identifier_value from rejected where identifier_type = 'email' and is_rejected)
group by r.email_normalized;

create or replace temp table valid_orders as
with rated as (
    select o.*, case when o.currency = 'USD' then 1 else fx.usd_per_unit end as usd_per_unit
    from shop_orders as o
    asof left join (select * from fx_rates where usd_per_unit is not null) as fx
        on o.currency = fx.currency and cast(o.created_at as date) >= fx.rate_date
)
select
    o.order_id, a.customer_id, o.created_at, o.status in ('paid', 'fulfilled', 'partially_refunded') as is_valid,
    cast(case when o.status in ('paid', 'fulfilled', 'partially_refunded')
        then (o.total - o.refunded_total) * cast(o.usd_per_unit as decimal(18, 8)) else 0 end
        as decimal(18, 4)) as net_revenue_usd
from rated as o
left join assignments as a
    on a.source = case when o.customer_id is null then 'orders.guest_order' else 'orders.customer' end
    and a.source_id = cast(coalesce(o.customer_id, o.order_id) as varchar);

-- @section customers
create or replace table floor.customers as
with records_c as (
    select a.customer_id, r.*,
        r.email_normalized in (select identifier_value from rejected
            where identifier_type = 'email' and is_rejected) as email_is_rejected,
        r.phone_normalized in (select identifier_value from rejected
            where identifier_type = 'phone' and is_rejected) as phone_is_rejected
    from assignments as a inner join records as r using (record_id)
),
primary_emails as (
    select customer_id, trim(email) as primary_email from records_c where email_normalized is not null
    qualify row_number() over (partition by customer_id
        order by email_is_rejected, source_priority, updated_at desc nulls last, record_id) = 1
),
primary_phones as (
    select customer_id, phone_normalized as primary_phone from records_c where phone_normalized is not null
    qualify row_number() over (partition by customer_id
        order by phone_is_rejected, source_priority, updated_at desc nulls last, record_id) = 1
),
names as (
    select customer_id, full_name from records_c where full_name is not null
    qualify row_number() over (partition by customer_id
        order by source_priority, updated_at desc nulls last, record_id) = 1
),
countries as (
    select customer_id, country from records_c where country is not null
    qualify row_number() over (partition by customer_id
        order by source_priority, updated_at desc nulls last, record_id) = 1
),
record_stats as (
    select customer_id, min(first_seen_at) as first_record_at from records_c group by customer_id
),
orders as (
    select customer_id, min(created_at) as first_any_order_at,
        count(*) filter (where is_valid) as order_count,
        sum(net_revenue_usd) filter (where is_valid) as lifetime_revenue_usd,
        min(created_at) filter (where is_valid) as first_order_at,
        max(created_at) filter (where is_valid) as last_order_at
    from valid_orders group by customer_id
),
tickets as (
    select a.customer_id, count(*) as ticket_count,
        count(*) filter (where t.status in ('new', 'open', 'pending', 'hold')) as open_ticket_count,
        count(*) filter (where t.satisfaction_score = 'good') as csat_good,
        count(*) filter (where t.satisfaction_score = 'bad') as csat_bad,
        avg(t.full_resolution_minutes) as avg_resolution_minutes
    from helpdesk_tickets as t
    inner join assignments as a on a.source = 'helpdesk.user' and a.source_id = cast(t.requester_id as varchar)
    where t.status != 'deleted'
    group by a.customer_id
),
email_statuses as (
    select a.customer_id,
        min(case c.status when 'subscribed' then 1 when 'unsubscribed' then 2 when 'cleaned' then 3 end) as best
    from esp_contacts as c
    inner join assignments as a on a.source = 'esp.contact' and a.source_id = c.contact_id
    group by a.customer_id
),
engagement as (
    select ec.customer_id,
        count(distinct e.campaign_id) filter (where e.event = 'delivered') as emails_delivered,
        count(distinct e.campaign_id) filter (where e.event = 'open' and not e.is_machine_open) as unique_human_opens,
        count(distinct e.campaign_id) filter (where e.event = 'click') as unique_clicks,
        max(e.event_at) filter (where (e.event = 'open' and not e.is_machine_open) or e.event = 'click')
            as last_engaged_at
    from esp_events as e inner join email_customers as ec using (email_normalized)
    group by ec.customer_id
)
select
    s.customer_id, pe.primary_email, pp.primary_phone, n.full_name,
    coalesce(co.country, phone_region(pp.primary_phone)) as country,
    least(s.first_record_at, o.first_any_order_at) as first_seen_at,
    coalesce(o.order_count, 0) as order_count,
    cast(coalesce(o.lifetime_revenue_usd, 0) as decimal(18, 4)) as lifetime_revenue_usd,
    -- the mart's rounding (macro decimal_ratio): revenue to 1e-4 units, then half-up integer division, exact
    -- at ties (sum / n rounded as a double flips with the sum's last bits, i.e. with row order)
    cast(cast((2 * cast(o.lifetime_revenue_usd * 10000 as bigint) + o.order_count)
              // (2 * nullif(o.order_count, 0)) as decimal(18, 0)) * 0.0001::decimal(5, 4) as decimal(18, 4))
        as avg_order_value_usd,
    o.first_order_at, o.last_order_at,
    coalesce(t.ticket_count, 0) as ticket_count, coalesce(t.open_ticket_count, 0) as open_ticket_count,
    coalesce(t.csat_good, 0) as csat_good, coalesce(t.csat_bad, 0) as csat_bad, t.avg_resolution_minutes,
    case es.best when 1 then 'subscribed' when 2 then 'unsubscribed' when 3 then 'cleaned' else 'none' end
        as email_status,
    coalesce(en.emails_delivered, 0) as emails_delivered,
    coalesce(en.unique_human_opens, 0) as unique_human_opens,
    coalesce(en.unique_clicks, 0) as unique_clicks,
    en.last_engaged_at
from record_stats as s
left join primary_emails as pe using (customer_id)
left join primary_phones as pp using (customer_id)
left join names as n using (customer_id)
left join countries as co using (customer_id)
left join orders as o using (customer_id)
left join tickets as t using (customer_id)
left join email_statuses as es using (customer_id)
left join engagement as en using (customer_id);

-- @section campaign_performance
create or replace table floor.campaign_performance as
with campaigns as (
    select c.*,
        case when c.cost_currency = 'USD' then cast(c.cost as decimal(18, 4))
            else cast(c.cost * r.usd_per_unit as decimal(18, 4)) end as cost_usd
    from esp_campaigns as c
    left join lateral (
        select usd_per_unit from fx_rates as fx
        where fx.currency = c.cost_currency and fx.rate_date <= cast(c.send_at as date)
        order by fx.rate_date desc limit 1
    ) as r on true
),
funnel as (
    select campaign_id,
        count(distinct recipient_key) filter (where event = 'processed') as processed,
        count(distinct recipient_key) filter (where event = 'delivered') as delivered,
        count(distinct recipient_key) filter (where event = 'bounce') as bounced,
        count(distinct recipient_key) filter (where event = 'dropped') as dropped,
        count(distinct recipient_key) filter (where event = 'deferred') as deferred,
        count(distinct recipient_key) filter (where event = 'open') as unique_opens,
        count(distinct recipient_key) filter (where event = 'open' and not is_machine_open) as unique_human_opens,
        count(distinct recipient_key) filter (where event = 'open' and is_machine_open) as unique_machine_opens,
        count(distinct recipient_key) filter (where event = 'click') as unique_clicks,
        count(distinct recipient_key) filter (where event in ('unsubscribe', 'group_unsubscribe')) as unsubscribes,
        count(distinct recipient_key) filter (where event = 'spamreport') as spam_reports
    from esp_events where campaign_id is not null and has_email
    group by campaign_id
),
touches as (
    select e.sg_event_id, e.campaign_id, e.event, e.event_at, ec.customer_id
    from esp_events as e inner join email_customers as ec using (email_normalized)
    where e.campaign_id is not null and e.event_at is not null
        and (e.event = 'click' or (e.event = 'open' and not e.is_machine_open))
),
attributed as (
    select o.order_id, o.net_revenue_usd, t.campaign_id
    from valid_orders as o
    inner join touches as t
        on o.customer_id = t.customer_id and o.created_at >= t.event_at
        and o.created_at <= t.event_at + to_hours(${attribution_hours})
    where o.is_valid and o.customer_id is not null and o.created_at is not null
    qualify row_number() over (partition by o.order_id order by t.event_at desc,
        case when t.event = 'click' then 0 else 1 end, t.campaign_id, t.sg_event_id) = 1
),
attribution as (
    select campaign_id, count(*) as attributed_orders, sum(coalesce(net_revenue_usd, 0)) as attributed_revenue_usd
    from attributed group by campaign_id
),
members as (
    select au.campaign_id, lower(trim(au.email)) as recipient_key, lower(trim(au."group")) as audience_group,
        min(a.customer_id) as customer_id, any_value(c.send_at) as send_at
    from w.raw.esp_audiences as au
    inner join campaigns as c on au.campaign_id = c.campaign_id and c.send_at is not null
    left join assignments as a on a.source = 'esp.audience_member' and a.source_id = au.campaign_id || ':' || au.email
    group by all
),
member_windows as (
    select m.campaign_id, m.recipient_key, m.audience_group, sum(coalesce(o.net_revenue_usd, 0)) as revenue
    from members as m
    inner join valid_orders as o
        on m.customer_id = o.customer_id and o.is_valid and o.created_at >= m.send_at
        and o.created_at < m.send_at + to_days(${holdout_days})
    group by all
),
member_outcomes as (
    select m.campaign_id, m.audience_group, w.revenue is not null as converted, coalesce(w.revenue, 0) as revenue,
        row_number() over (partition by m.campaign_id, m.audience_group, coalesce(m.customer_id, m.recipient_key)
            order by m.recipient_key) = 1 as counts_revenue
    from members as m
    left join member_windows as w using (campaign_id, recipient_key, audience_group)
),
counts as (
    select campaign_id,
        count(*) filter (where audience_group = 'treatment') as tn,
        count(*) filter (where audience_group = 'control') as cn,
        count(*) filter (where audience_group = 'treatment' and converted) as tc,
        count(*) filter (where audience_group = 'control' and converted) as cc,
        coalesce(sum(revenue) filter (where audience_group = 'treatment' and counts_revenue), 0) as t_revenue,
        coalesce(sum(revenue) filter (where audience_group = 'control' and counts_revenue), 0) as c_revenue
    from member_outcomes group by campaign_id
),
-- Wilson score intervals of both rates, combined into Newcombe's hybrid interval of the difference;
-- pooled two-proportion z-test
rates as (
    select *, tc / tn as p_t, cc / cn as p_c, ${z} as z,
        (tc + cc) / (tn + cn) as pooled
    from (select campaign_id, tc::double as tc, tn::double as tn, cc::double as cc, cn::double as cn,
        t_revenue, c_revenue from counts)
),
wilson as (
    select *,
        (p_t + z * z / (2 * tn)) / (1 + z * z / tn)
            - z / (1 + z * z / tn) * sqrt(p_t * (1 - p_t) / tn + z * z / (4 * tn * tn)) as t_low,
        (p_t + z * z / (2 * tn)) / (1 + z * z / tn)
            + z / (1 + z * z / tn) * sqrt(p_t * (1 - p_t) / tn + z * z / (4 * tn * tn)) as t_high,
        (p_c + z * z / (2 * cn)) / (1 + z * z / cn)
            - z / (1 + z * z / cn) * sqrt(p_c * (1 - p_c) / cn + z * z / (4 * cn * cn)) as c_low,
        (p_c + z * z / (2 * cn)) / (1 + z * z / cn)
            + z / (1 + z * z / cn) * sqrt(p_c * (1 - p_c) / cn + z * z / (4 * cn * cn)) as c_high
    from rates where tn > 0 and cn > 0
),
lift as (
    select r.campaign_id, r.tn, r.cn, r.tc, r.cc, r.t_revenue, r.c_revenue,
        case when r.tn > 0 then r.p_t end as treatment_conversion_rate,
        case when w.campaign_id is not null then r.p_c end as control_conversion_rate,
        w.p_t - w.p_c as lift_abs,
        case when w.p_c > 0 then (w.p_t - w.p_c) / w.p_c end as lift_rel,
        w.p_t - w.p_c - sqrt(pow(w.p_t - w.t_low, 2) + pow(w.c_high - w.p_c, 2)) as lift_ci_low,
        w.p_t - w.p_c + sqrt(pow(w.t_high - w.p_t, 2) + pow(w.p_c - w.c_low, 2)) as lift_ci_high,
        case
            when w.campaign_id is null then null
            when w.pooled in (0, 1) then 1.0
            else erfc(abs(w.p_t - w.p_c) / sqrt(w.pooled * (1 - w.pooled) * (1 / w.tn + 1 / w.cn)) / sqrt(2))
        end as p_value
    from rates as r left join wilson as w using (campaign_id)
),
measures as (
    select c.campaign_id, c.name, c.subject, c.send_at, c.target_segment, c.holdout_pct,
        coalesce(l.tn, 0)::bigint as treatment_size, coalesce(l.cn, 0)::bigint as control_size,
        coalesce(l.cn, 0) > 0 as has_control_group,
        coalesce(f.processed, 0) as processed, coalesce(f.delivered, 0) as delivered,
        coalesce(f.bounced, 0) as bounced, coalesce(f.dropped, 0) as dropped, coalesce(f.deferred, 0) as deferred,
        coalesce(f.unique_opens, 0) as unique_opens, coalesce(f.unique_human_opens, 0) as unique_human_opens,
        coalesce(f.unique_machine_opens, 0) as unique_machine_opens,
        coalesce(f.unique_clicks, 0) as unique_clicks, coalesce(f.unsubscribes, 0) as unsubscribes,
        coalesce(f.spam_reports, 0) as spam_reports,
        coalesce(attr.attributed_orders, 0) as attributed_orders,
        coalesce(attr.attributed_revenue_usd, 0) as attributed_revenue_usd,
        l.tc::bigint as treatment_conversions, l.cc::bigint as control_conversions,
        l.treatment_conversion_rate, l.control_conversion_rate, l.lift_abs, l.lift_rel, l.lift_ci_low,
        l.lift_ci_high, l.p_value,
        cast(l.t_revenue as decimal(38, 4)) as treatment_revenue_usd,
        cast(l.c_revenue as decimal(38, 4)) as control_revenue_usd,
        c.cost, c.cost_currency, c.cost_usd
    from campaigns as c
    left join funnel as f using (campaign_id)
    left join attribution as attr using (campaign_id)
    left join lift as l using (campaign_id)
),
per_recipient as (
    select *,
        case when delivered > 0 then unique_human_opens * 1.0 / delivered end as open_rate,
        case when delivered > 0 then unique_clicks * 1.0 / delivered end as click_rate,
        case when unique_human_opens > 0 then unique_clicks * 1.0 / unique_human_opens end as click_to_open_rate,
        lift_abs * treatment_size as incremental_conversions,
        case when treatment_size > 0 then treatment_revenue_usd / treatment_size end
            as revenue_per_recipient_treatment_usd,
        case when control_size > 0 then control_revenue_usd / control_size end as revenue_per_recipient_control_usd
    from measures
)
select
    campaign_id, name, subject, send_at, target_segment, holdout_pct, treatment_size, control_size,
    has_control_group, processed, delivered, bounced, dropped, deferred, unique_opens, unique_human_opens,
    unique_machine_opens, unique_clicks, unsubscribes, spam_reports, open_rate, click_rate, click_to_open_rate,
    attributed_orders, attributed_revenue_usd, treatment_conversions, control_conversions,
    treatment_conversion_rate, control_conversion_rate, lift_abs, lift_rel, lift_ci_low, lift_ci_high, p_value,
    incremental_conversions, revenue_per_recipient_treatment_usd, revenue_per_recipient_control_usd,
    case when has_control_group and treatment_size > 0
        then (revenue_per_recipient_treatment_usd - revenue_per_recipient_control_usd) * treatment_size
    end as incremental_revenue_usd,
    cost, cost_currency, cost_usd,
    case when has_control_group and treatment_size > 0 and cost_usd > 0
        then ((revenue_per_recipient_treatment_usd - revenue_per_recipient_control_usd) * treatment_size - cost_usd)
            / cost_usd
    end as roi
from per_recipient;
