-- Email addresses that are no identifier because they are not syntactically valid addresses
-- (is_valid_email: email-validator, syntax only), counted per kind of source record. They are kept on
-- their records for display but link nobody and never reach an audience file. Each distinct address is
-- validated once: the Python UDF is the costly part, and events repeat the same few addresses.
with records as (
    select
        'orders.customer' as source,
        email
    from {{ ref('stg_shop__customers') }}
    union all
    select
        'orders.guest_order' as source,
        email
    from {{ ref('stg_shop__orders') }}
    where is_guest
    union all
    select
        'helpdesk.user' as source,
        email
    from {{ ref('stg_helpdesk__users') }}
    where is_end_user
    union all
    select
        'esp.contact' as source,
        email
    from {{ ref('stg_esp__contacts') }}
    union all
    select
        'esp.audience_member' as source,
        email
    from {{ ref('stg_esp__audiences') }}
    union all
    select
        'esp.event' as source,
        email
    from {{ ref('stg_esp__events') }}
),

addresses as (
    select
        source,
        email,
        count(*) as records
    from records
    where trim(coalesce(email, '')) <> ''
    group by source, email
),

checked as (
    select
        source,
        records,
        not is_valid_email(email) as is_invalid
    from addresses
)

select
    source,
    cast(sum(records) as bigint) as records_with_email,
    cast(sum(case when is_invalid then records else 0 end) as bigint) as invalid_emails,
    cast(sum(case when is_invalid then records else 0 end) as double) / sum(records) as invalid_share
from checked
group by source
