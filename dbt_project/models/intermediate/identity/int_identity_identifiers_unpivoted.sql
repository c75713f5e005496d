-- Identifiers each record carries in its own fields (long form): normalised email, normalised phone and
-- the shop customer id (a shop customer's own id, a helpdesk user's external_id).
with identifiers as (
    select
        record_id,
        'email' as identifier_type,
        email_normalized as identifier_value,
        is_account_like
    from {{ ref('int_identity_records_unioned') }}
    where email_normalized is not null
    union all
    select
        record_id,
        'phone' as identifier_type,
        phone_normalized as identifier_value,
        is_account_like
    from {{ ref('int_identity_records_unioned') }}
    where phone_normalized is not null
    union all
    select
        record_id,
        'shop_customer_id' as identifier_type,
        shop_customer_key as identifier_value,
        is_account_like
    from {{ ref('int_identity_records_unioned') }}
    where shop_customer_key is not null
)

select
    record_id,
    identifier_type,
    identifier_value,
    is_account_like
from identifiers
