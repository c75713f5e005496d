-- Fan-out of every identifier value: how many account-like records carry it, and for phones how many
-- distinct normalised emails appear beside it on any record or order (guest and customer orders).
with account_fanout as (
    select
        identifier_type,
        identifier_value,
        count(distinct record_id) filter (where is_account_like) as account_records,
        count(distinct record_id) as records
    from {{ ref('int_identity_identifiers_unpivoted') }}
    group by identifier_type, identifier_value
),

phone_email_pairs as (
    select
        phone_normalized,
        email_normalized
    from {{ ref('int_identity_records_unioned') }}
    where phone_normalized is not null and email_normalized is not null
    union
    -- checkout contacts of customers' orders are no identifiers, but they do show a shared phone
    select
        phone_normalized,
        email_normalized
    from {{ ref('stg_shop__orders') }}
    where phone_normalized is not null and email_normalized is not null
),

phone_email_fanout as (
    select
        phone_normalized as identifier_value,
        count(distinct email_normalized) as distinct_emails
    from phone_email_pairs
    group by phone_normalized
)

select
    a.identifier_type,
    a.identifier_value,
    a.records,
    a.account_records,
    coalesce(p.distinct_emails, 0) as distinct_emails,
    a.account_records > {{ var('max_identifier_fanout') }} as is_shared_by_accounts,
    coalesce(p.distinct_emails, 0) > {{ var('max_identifier_fanout') }} as is_shared_by_emails,
    (
        a.account_records > {{ var('max_identifier_fanout') }}
        or coalesce(p.distinct_emails, 0) > {{ var('max_identifier_fanout') }}
    ) as is_rejected
from account_fanout as a
left join phone_email_fanout as p
    on a.identifier_type = 'phone' and a.identifier_value = p.identifier_value
