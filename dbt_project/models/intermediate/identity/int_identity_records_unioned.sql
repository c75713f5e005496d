-- Every source record that names a person (marts.md: customer_identities), with its matching keys.
-- One row per record. record_key is the record's node in the identity graph: it depends on the record alone,
-- so the components of records a build did not touch keep their labels (incremental stitching,
-- docs/identity-incremental.md). record_rank orders records oldest first (anchors, id ties); it renumbers
-- when a record is added, so nothing persisted may hold it.
-- Each source's branch lists its columns through the macro identity_record (same columns, same order).
with unioned as (
    select
        {{ identity_record(
            'orders.customer', 'customer_id', 'true', 'coalesce(created_at, updated_at)', 'updated_at',
            email='email', email_normalized='email_normalized', phone='phone', phone_normalized='phone_normalized',
            shop_customer_key='customer_id', full_name='full_name', country='country'
        ) }}
    from {{ ref('stg_shop__customers') }}

    union all

    -- Orders naming a shop customer that has not landed (yet): the customer still is a record, so that
    -- every order belongs to one; it carries no identifier but its id.
    select
        {{ identity_record(
            'orders.customer', 'o.customer_id', 'true', 'coalesce(min(o.created_at), min(o.updated_at))',
            'max(o.updated_at)', shop_customer_key='o.customer_id'
        ) }}
    from {{ ref('stg_shop__orders') }} as o
    where
        o.customer_id is not null
        and o.customer_id not in (select c.customer_id from {{ ref('stg_shop__customers') }} as c)
    group by o.customer_id

    union all

    select
        {{ identity_record(
            'orders.guest_order', 'order_id', 'false', 'coalesce(created_at, updated_at)', 'updated_at',
            email='email', email_normalized='email_normalized', phone='phone', phone_normalized='phone_normalized'
        ) }}
    from {{ ref('stg_shop__orders') }}
    where customer_id is null

    union all

    select
        {{ identity_record(
            'helpdesk.user', 'user_id', 'true', 'coalesce(created_at, updated_at)', 'updated_at',
            email='email', email_normalized='email_normalized', phone='phone', phone_normalized='phone_normalized',
            shop_customer_key='external_id', full_name="nullif(trim(name), '')"
        ) }}
    from {{ ref('stg_helpdesk__users') }}
    where is_end_user

    union all

    select
        {{ identity_record(
            'esp.contact', 'contact_id', 'true', 'coalesce(created_at, updated_at, _extracted_at)',
            'coalesce(updated_at, _extracted_at)', email='email', email_normalized='email_normalized',
            full_name='full_name'
        ) }}
    from {{ ref('stg_esp__contacts') }}

    union all

    select
        {{ identity_record(
            'esp.audience_member', 'a.audience_member_id', 'false', 'coalesce(c.send_at, a._extracted_at)',
            'a._extracted_at', email='a.email', email_normalized='a.email_normalized'
        ) }}
    from {{ ref('stg_esp__audiences') }} as a
    left join {{ ref('stg_esp__campaigns') }} as c on a.campaign_id = c.campaign_id
),

prioritised as (
    select
        *,
        case source
            when 'orders.customer' then 1
            when 'helpdesk.user' then 2
            when 'esp.contact' then 3
            when 'orders.guest_order' then 4
            else 5
        end as source_priority
    from unioned
)

select
    source || ':' || source_id as record_id,
    {{ rapport.stable_key("source || ':' || source_id") }} as record_key,
    source,
    source_id,
    source_priority,
    -- oldest record first; the cluster's smallest rank is its anchor (see int_identity_clusters_propagated)
    row_number() over (order by first_seen_at asc nulls last, source_priority asc, source_id asc) as record_rank,
    is_account_like,
    first_seen_at,
    updated_at,
    email,
    email_normalized,
    phone,
    phone_normalized,
    shop_customer_key,
    full_name,
    country
from prioritised
