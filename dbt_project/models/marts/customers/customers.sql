{{ config(
    materialized=rapport.incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook="{{ rapport.customers_delete_touched() }}",
    post_hook="{{ rapport.customers_keep_state() }}"
) }}
-- The unified customer table: one row per real person (stitched identity cluster), marts.md contract.
-- Incremental on DuckDB (macros/customers_touched.sql, docs/marts-incremental.md): a build recomputes the
-- customers whose row can differ from the last build's only; its pre-hook deletes their rows and those of
-- the customer ids no longer current, and writes the engagement columns (macros/customer_engagement.sql) of
-- the customers whose engagement alone can have changed. A plain table on Spark.
-- depends_on: {{ ref('stg_shop__customers') }} {{ ref('stg_shop__orders') }} {{ ref('stg_helpdesk__users') }}
-- depends_on: {{ ref('stg_esp__audiences') }} {{ ref('stg_shop__fx_rates') }}
-- depends_on: {{ source('shop', 'shop_orders') }}
-- depends_on: {{ source('esp', 'esp_campaigns') }} {{ source('helpdesk', 'helpdesk_tickets') }}
-- depends_on: {{ ref('stg_esp__events') }} {{ ref('int_email_customers') }}
{%- set touched = rapport.customers_touched_relation() %}
{%- set engagement_table = rapport.customers_engagement_relation() %}

with assignments as (
    select
        record_id,
        customer_id
    from {{ ref('int_customer_ids_assigned') }}
    where
        is_current
        {%- if touched %}
            and customer_id in (select t.customer_id from {{ touched }} as t)
        {%- endif %}
),

rejected as (
    select
        identifier_type,
        identifier_value
    from {{ ref('int_identity_fanout_measured') }}
    where is_rejected
),

records as (
    select
        a.customer_id,
        r.*,
        r.email_normalized in (
            select x.identifier_value from rejected as x
            where x.identifier_type = 'email')
            as email_is_rejected,
        r.phone_normalized in (
            select x.identifier_value from rejected as x
            where x.identifier_type = 'phone')
            as phone_is_rejected
    from assignments as a
    inner join {{ ref('int_identity_records_unioned') }} as r on a.record_id = r.record_id
),

-- display attributes: the best record first (shop account > helpdesk > ESP > guest order > audience),
-- linking identifiers before rejected shared ones, then the most recently updated
primary_emails as (
    {{ best_customer_record('records', 'trim(email) as primary_email, email_normalized', 'email_normalized',
        'email_is_rejected asc,') }}
),

primary_phones as (
    {{ best_customer_record('records', 'phone_normalized as primary_phone', 'phone_normalized',
        'phone_is_rejected asc,') }}
),

names as (
    {{ best_customer_record('records', 'full_name', 'full_name') }}
),

countries as (
    {{ best_customer_record('records', 'country', 'country') }}
),

record_stats as (
    select
        customer_id,
        min(first_seen_at) as first_record_at,
        count(*) as identity_records,
        count(*) filter (where source = 'orders.customer') as shop_accounts,
        count(*) filter (where source = 'helpdesk.user') as helpdesk_users,
        count(*) filter (where source = 'esp.contact') as esp_contacts
    from records
    group by customer_id
),

orders as (
    select
        customer_id,
        min(created_at) as first_any_order_at,
        count(*) filter (where is_valid) as order_count,
        sum(net_revenue_usd) filter (where is_valid) as lifetime_revenue_usd,
        min(created_at) filter (where is_valid) as first_order_at,
        max(created_at) filter (where is_valid) as last_order_at
    from {{ ref('int_orders_enriched') }}
    {%- if touched %}
        where customer_id in (select t.customer_id from {{ touched }} as t)
    {%- endif %}
    group by customer_id
),

tickets as (
    select
        r.customer_id,
        count(*) as ticket_count,
        count(*) filter (where t.status in ('new', 'open', 'pending', 'hold')) as open_ticket_count,
        count(*) filter (where t.satisfaction_score = 'good') as csat_good,
        count(*) filter (where t.satisfaction_score = 'bad') as csat_bad,
        avg(t.full_resolution_time_minutes) as avg_resolution_minutes
    from {{ ref('stg_helpdesk__tickets') }} as t
    inner join records as r
        on r.source = 'helpdesk.user' and r.source_id = cast(t.requester_id as {{ dbt.type_string() }})
    where t.status != 'deleted'
    group by r.customer_id
),

email_statuses as (
    select
        r.customer_id,
        min(
            case c.status when 'subscribed' then 1 when 'unsubscribed' then 2 when 'cleaned' then 3 end
        ) as best_status_rank
    from {{ ref('stg_esp__contacts') }} as c
    inner join records as r on r.source = 'esp.contact' and c.contact_id = r.source_id
    group by r.customer_id
),

-- on DuckDB by customer the pre-hook has computed it already (for these and the engagement-only customers)
engagement as (
    {%- if engagement_table %}
        select * from {{ engagement_table }}
    {%- else %}
        {{ rapport.customer_engagement() }}
    {%- endif %}
)

select
    s.customer_id,
    pe.primary_email,
    pp.primary_phone,
    n.full_name,
    coalesce(co.country, phone_region(pp.primary_phone)) as country,
    least(s.first_record_at, o.first_any_order_at) as first_seen_at,
    coalesce(o.order_count, 0) as order_count,
    cast(coalesce(o.lifetime_revenue_usd, 0) as decimal(18, 4)) as lifetime_revenue_usd,
    case
        when o.order_count > 0 then {{ decimal_ratio('o.lifetime_revenue_usd', 'o.order_count') }}
    end as avg_order_value_usd,
    o.first_order_at,
    o.last_order_at,
    coalesce(t.ticket_count, 0) as ticket_count,
    coalesce(t.open_ticket_count, 0) as open_ticket_count,
    coalesce(t.csat_good, 0) as csat_good,
    coalesce(t.csat_bad, 0) as csat_bad,
    t.avg_resolution_minutes,
    case es.best_status_rank
        when 1 then 'subscribed'
        when 2 then 'unsubscribed'
        when 3 then 'cleaned'
        else 'none'
    end as email_status,
    coalesce(en.emails_delivered, 0) as emails_delivered,
    coalesce(en.unique_human_opens, 0) as unique_human_opens,
    coalesce(en.unique_clicks, 0) as unique_clicks,
    en.last_engaged_at,
    pe.email_normalized,
    s.identity_records,
    s.shop_accounts,
    s.helpdesk_users,
    s.esp_contacts
from record_stats as s
left join primary_emails as pe on s.customer_id = pe.customer_id
left join primary_phones as pp on s.customer_id = pp.customer_id
left join names as n on s.customer_id = n.customer_id
left join countries as co on s.customer_id = co.customer_id
left join orders as o on s.customer_id = o.customer_id
left join tickets as t on s.customer_id = t.customer_id
left join email_statuses as es on s.customer_id = es.customer_id
left join engagement as en on s.customer_id = en.customer_id
