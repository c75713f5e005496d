-- One row per customer: RFM, lifecycle, value, engagement and support segments as of the run's as-of date.
{%- set engagement_days = var('engagement_window_days', 90) %}
{%- set bad_rating_days = var('support_bad_rating_days', 180) %}
{%- set ticket_window_days = var('support_ticket_window_days', 90) %}
{%- set ticket_count_at_risk = var('support_ticket_count_at_risk', 3) %}

with run_scope as (
    select as_of_date
    from {{ ref('int_segment_scopes') }}
    where scope_id = 'as_of'
),

customers as (
    select
        customer_id,
        email_status
    from {{ ref('customers') }}
),

rfm as (
    select *
    from {{ ref('int_segment_rfm') }}
    where scope_id = 'as_of'
),

-- clicks and human opens (privacy-proxy prefetches are not engagement), resolved to stitched customers.
-- The window (event date in [as-of - N days, as-of]) is a range of event_at, not a date cast and a datediff of
-- every event: DuckDB filters the 9.3M events' timestamps before reading their addresses (issue 16)
engagement_events as (
    select
        email_customers.customer_id,
        max(case when events.event = 'click' then 1 else 0 end) as has_click,
        max(case when events.event = 'open' then 1 else 0 end) as has_human_open
    from {{ ref('stg_esp__events') }} as events
    inner join {{ ref('int_email_customers') }} as email_customers
        on events.email_normalized = email_customers.email_normalized
    cross join run_scope
    where
        (events.event = 'click' or (events.event = 'open' and not coalesce(events.sg_machine_open, false)))
        and events.event_at < cast(run_scope.as_of_date + interval 1 day as timestamp)
        and events.event_at >= cast(run_scope.as_of_date - interval {{ engagement_days }} day as timestamp)
    group by email_customers.customer_id
),

-- The address to upload for email marketing: the person's most recently updated subscribed ESP contact,
-- unless some contact with the same normalised address is unsubscribed or cleaned (never re-mail those).
esp_contacts as (
    select
        identities.customer_id,
        contacts.contact_id,
        contacts.email,
        contacts.email_normalized,
        contacts.status,
        contacts.updated_at
    from {{ ref('customer_identities') }} as identities
    inner join {{ ref('stg_esp__contacts') }} as contacts
        on identities.source = 'esp.contact' and identities.source_id = contacts.contact_id
),

suppressed_emails as (
    select distinct email_normalized
    from {{ ref('stg_esp__contacts') }}
    where status in ('unsubscribed', 'cleaned') and email_normalized is not null
),

marketing_emails as (
    select
        esp_contacts.customer_id,
        esp_contacts.email as marketing_email
    from esp_contacts
    left join suppressed_emails on esp_contacts.email_normalized = suppressed_emails.email_normalized
    where
        esp_contacts.status = 'subscribed'
        and esp_contacts.email_normalized is not null
        and suppressed_emails.email_normalized is null
    qualify row_number() over (
        partition by esp_contacts.customer_id
        order by esp_contacts.updated_at desc nulls last, esp_contacts.contact_id asc
    ) = 1
),

helpdesk_users as (
    select
        cast(source_id as {{ dbt.type_string() }}) as requester_key,
        customer_id
    from {{ ref('customer_identities') }}
    where source = 'helpdesk.user'
),

tickets as (
    select
        helpdesk_users.customer_id,
        tickets.status,
        tickets.priority,
        tickets.satisfaction_score,
        tickets.created_at,
        tickets.updated_at
    from {{ ref('stg_helpdesk__tickets') }} as tickets
    inner join helpdesk_users
        on cast(tickets.requester_id as {{ dbt.type_string() }}) = helpdesk_users.requester_key
    cross join run_scope
    where
        tickets.status <> 'deleted'
        and cast(tickets.created_at as date) <= run_scope.as_of_date
),

support as (
    select
        tickets.customer_id,
        count(*) as tickets_ever,
        -- a rating's time is its ticket's latest updated_at
        max(case
            when
                tickets.satisfaction_score = 'bad'
                and {{ dbt.datediff('cast(tickets.updated_at as date)', 'run_scope.as_of_date', 'day') }}
                <= {{ bad_rating_days }}
                then 1
            else 0
        end) as has_recent_bad_rating,
        sum(case
            when
                {{ dbt.datediff('cast(tickets.created_at as date)', 'run_scope.as_of_date', 'day') }}
                <= {{ ticket_window_days }}
                then 1
            else 0
        end) as recent_tickets,
        max(case
            when tickets.status in ('new', 'open', 'pending', 'hold') and tickets.priority = 'urgent'
                then 1
            else 0
        end) as has_open_urgent
    from tickets
    cross join run_scope
    group by tickets.customer_id
)

select
    customers.customer_id,
    run_scope.as_of_date,
    rfm.recency_days,
    coalesce(rfm.frequency, 0) as frequency,
    coalesce(rfm.monetary_usd, 0) as monetary_usd,
    rfm.r_score,
    rfm.f_score,
    rfm.m_score,
    coalesce(rfm.rfm_segment, 'No Purchases') as rfm_segment,
    coalesce(rfm.lifecycle_stage, 'prospect') as lifecycle_stage,
    coalesce(rfm.value_tier, 'none') as value_tier,
    case
        when coalesce(customers.email_status, 'none') <> 'subscribed' then 'unreachable'
        when engagement_events.has_click = 1 then 'engaged'
        when engagement_events.has_human_open = 1 then 'opener'
        else 'dormant'
    end as engagement_tier,
    case
        when support.customer_id is null then 'none'
        when
            support.has_recent_bad_rating = 1
            or support.recent_tickets >= {{ ticket_count_at_risk }}
            or support.has_open_urgent = 1
            then 'at_risk'
        else 'healthy'
    end as support_health,
    rfm.first_order_at,
    rfm.last_order_at,
    rfm.days_since_first_order,
    rfm.gap_before_last_order_days,
    case when customers.email_status = 'subscribed' then marketing_emails.marketing_email end as marketing_email
from customers
cross join run_scope
left join rfm on customers.customer_id = rfm.customer_id
left join engagement_events on customers.customer_id = engagement_events.customer_id
left join support on customers.customer_id = support.customer_id
left join marketing_emails on customers.customer_id = marketing_emails.customer_id
