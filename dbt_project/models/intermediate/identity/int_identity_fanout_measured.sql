{{ config(
    materialized=rapport.incremental_on_duckdb(),
    unique_key=['identifier_type', 'identifier_value'],
    incremental_strategy='delete+insert',
    pre_hook="{{ rapport.delete_touched_values() }}"
) }}
-- Fan-out of every identifier value: how many account-like records carry it, and for phones how many
-- distinct normalised emails appear beside it on any record or order (guest and customer orders).
-- Incremental by value (macros/identity_touched.sql): a build recomputes the values it touched (carried by a
-- touched record now or before, or the phone of a landed order: int_identity_identifiers_unpivoted lists
-- them) and deletes them first, so that a value no record carries any more leaves the table.
{%- set touched = rapport.identity_touched_values() %}

with
{%- if touched %}
    -- read through rapport.identity_touched, which the linter does not expand
    touched_values as (  -- noqa: ST03
        select touched_key from {{ touched }}
    ),
{%- endif %}

identifiers as (
    select
        identifier_type,
        identifier_value,
        record_id,
        is_account_like
    from {{ ref('int_identity_identifiers_unpivoted') }}
    where {{ rapport.identity_touched("identifier_type || ':' || identifier_value", touched, 'touched_values') }}
),

account_fanout as (
    select
        identifier_type,
        identifier_value,
        count(distinct record_id) filter (where is_account_like) as account_records,
        count(distinct record_id) as records
    from identifiers
    group by identifier_type, identifier_value
),

phone_email_pairs as (
    select
        phone_normalized,
        email_normalized
    from {{ ref('int_identity_records_unioned') }}
    where
        phone_normalized is not null and email_normalized is not null
        and {{ rapport.identity_touched("'phone:' || phone_normalized", touched, 'touched_values') }}
    union
    -- checkout contacts of customers' orders are no identifiers, but they do show a shared phone
    select
        phone_normalized,
        email_normalized
    from {{ ref('stg_shop__orders') }}
    where
        phone_normalized is not null and email_normalized is not null
        and {{ rapport.identity_touched("'phone:' || phone_normalized", touched, 'touched_values') }}
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
