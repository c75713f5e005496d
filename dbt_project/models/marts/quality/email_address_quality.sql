-- Email addresses that are no identifier because they are not syntactically valid addresses
-- (is_valid_email: email-validator, syntax only), counted per kind of source record. They are kept on
-- their records for display but link nobody and never reach an audience file.
with records as (
    select 'orders.customer' as source, email from {{ ref('stg_shop__customers') }}
    union all
    select 'orders.guest_order', email from {{ ref('stg_shop__orders') }} where is_guest
    union all
    select 'helpdesk.user', email from {{ ref('stg_helpdesk__users') }} where is_end_user
    union all
    select 'esp.contact', email from {{ ref('stg_esp__contacts') }}
    union all
    select 'esp.audience_member', email from {{ ref('stg_esp__audiences') }}
    union all
    select 'esp.event', email from {{ ref('stg_esp__events') }}
),

with_email as (
    select
        source,
        not is_valid_email(email) as is_invalid
    from records
    where trim(coalesce(email, '')) <> ''
)

select
    source,
    count(*) as records_with_email,
    count(*) filter (where is_invalid) as invalid_emails,
    count(*) filter (where is_invalid) / count(*) as invalid_share
from with_email
group by source
