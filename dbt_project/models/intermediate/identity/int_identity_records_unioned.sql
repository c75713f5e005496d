-- Every source record that names a person (marts.md: customer_identities), with its matching keys.
-- One row per record; record_rank orders records oldest first and is the label stitching propagates.
with shop_customers as (
    select
        'orders.customer' as source,
        cast(customer_id as varchar) as source_id,
        true as is_account_like,
        coalesce(created_at, updated_at) as first_seen_at,
        updated_at,
        email,
        email_normalized,
        phone,
        phone_normalized,
        cast(customer_id as varchar) as shop_customer_key,
        full_name,
        country
    from {{ ref('stg_shop__customers') }}
),

-- Orders naming a shop customer that has not landed (yet): the customer still is a record, so that
-- every order belongs to one; it carries no identifier but its id.
orphan_shop_customers as (
    select
        'orders.customer' as source,
        cast(o.customer_id as varchar) as source_id,
        true as is_account_like,
        coalesce(min(o.created_at), min(o.updated_at)) as first_seen_at,
        max(o.updated_at) as updated_at,
        null as email,
        null as email_normalized,
        null as phone,
        null as phone_normalized,
        cast(o.customer_id as varchar) as shop_customer_key,
        null as full_name,
        null as country
    from {{ ref('stg_shop__orders') }} as o
    where
        o.customer_id is not null
        and o.customer_id not in (select c.customer_id from {{ ref('stg_shop__customers') }} as c)
    group by o.customer_id
),

guest_orders as (
    select
        'orders.guest_order' as source,
        cast(order_id as varchar) as source_id,
        false as is_account_like,
        coalesce(created_at, updated_at) as first_seen_at,
        updated_at,
        email,
        email_normalized,
        phone,
        phone_normalized,
        null as shop_customer_key,
        null as full_name,
        null as country
    from {{ ref('stg_shop__orders') }}
    where customer_id is null
),

helpdesk_users as (
    select
        'helpdesk.user' as source,
        cast(user_id as varchar) as source_id,
        true as is_account_like,
        coalesce(created_at, updated_at) as first_seen_at,
        updated_at,
        email,
        email_normalized,
        phone,
        phone_normalized,
        external_id as shop_customer_key,
        nullif(trim(name), '') as full_name,
        null as country
    from {{ ref('stg_helpdesk__users') }}
    where is_end_user
),

esp_contacts as (
    select
        'esp.contact' as source,
        contact_id as source_id,
        true as is_account_like,
        coalesce(created_at, updated_at, _extracted_at) as first_seen_at,
        coalesce(updated_at, _extracted_at) as updated_at,
        email,
        email_normalized,
        null as phone,
        null as phone_normalized,
        null as shop_customer_key,
        full_name,
        null as country
    from {{ ref('stg_esp__contacts') }}
),

audience_members as (
    select
        'esp.audience_member' as source,
        a.audience_member_id as source_id,
        false as is_account_like,
        coalesce(c.send_at, a._extracted_at) as first_seen_at,
        a._extracted_at as updated_at,
        a.email,
        a.email_normalized,
        null as phone,
        null as phone_normalized,
        null as shop_customer_key,
        null as full_name,
        null as country
    from {{ ref('stg_esp__audiences') }} as a
    left join {{ ref('stg_esp__campaigns') }} as c on a.campaign_id = c.campaign_id
),

unioned as (
    select * from shop_customers
    union all by name
    select * from orphan_shop_customers
    union all by name
    select * from guest_orders
    union all by name
    select * from helpdesk_users
    union all by name
    select * from esp_contacts
    union all by name
    select * from audience_members
)

select
    source || ':' || source_id as record_id,
    source,
    source_id,
    case source
        when 'orders.customer' then 1
        when 'helpdesk.user' then 2
        when 'esp.contact' then 3
        when 'orders.guest_order' then 4
        else 5
    end as source_priority,
    -- oldest record first; the cluster's smallest rank is its anchor (see int_identity_clusters_propagated)
    row_number() over (
        order by
            first_seen_at nulls last,
            case source
                when 'orders.customer' then 1
                when 'helpdesk.user' then 2
                when 'esp.contact' then 3
                when 'orders.guest_order' then 4
                else 5
            end,
            source_id
    ) as record_rank,
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
from unioned
