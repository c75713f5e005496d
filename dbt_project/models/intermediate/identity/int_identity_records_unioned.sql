{{ config(
    materialized='incremental',
    unique_key='record_id',
    partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy(),
    pre_hook="{{ rapport.delete_touched_records() }}"
) }}
-- Every source record that names a person (marts.md: customer_identities), with its matching keys.
-- One row per record. record_key is the record's node in the identity graph: it depends on the record alone,
-- so the components of records a build did not touch keep their labels (incremental stitching,
-- docs/identity-incremental.md). Nothing here depends on other records (no rank): the oldest-first order
-- (first_seen_at, source_priority, source_id) is applied where it is used (anchors, id ties).
-- Incremental (macros/identity_touched.sql): a build recomputes the records touched since the last build and
-- deletes every touched record first (pre-hook), so that records that vanished leave the table.
-- Each source's branch lists its columns through the macro identity_record (same columns, same order).
-- depends_on: {{ source('shop', 'shop_orders') }} {{ source('esp', 'esp_campaigns') }}
{%- set touched = rapport.identity_touched_records() %}

with
{%- if touched %}
    -- read through rapport.identity_touched, which the linter does not expand
    touched_records as (  -- noqa: ST03
        select touched_key from {{ touched }}
    ),
{%- endif %}

unioned as (
    select
        {{ identity_record(
            'orders.customer', 'customer_id', 'true', 'coalesce(created_at, updated_at)', 'updated_at',
            email='email', email_normalized='email_normalized', phone='phone', phone_normalized='phone_normalized',
            shop_customer_key='customer_id', full_name='full_name', country='country'
        ) }}
    from {{ ref('stg_shop__customers') }}
    where {{ rapport.identity_touched(rapport.identity_record_id('orders.customer', 'customer_id'), touched) }}

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
        and {{ rapport.identity_touched(rapport.identity_record_id('orders.customer', 'o.customer_id'), touched) }}
    group by o.customer_id

    union all

    select
        {{ identity_record(
            'orders.guest_order', 'order_id', 'false', 'coalesce(created_at, updated_at)', 'updated_at',
            email='email', email_normalized='email_normalized', phone='phone', phone_normalized='phone_normalized'
        ) }}
    from {{ ref('stg_shop__orders') }}
    where
        customer_id is null
        and {{ rapport.identity_touched(rapport.identity_record_id('orders.guest_order', 'order_id'), touched) }}

    union all

    select
        {{ identity_record(
            'helpdesk.user', 'user_id', 'true', 'coalesce(created_at, updated_at)', 'updated_at',
            email='email', email_normalized='email_normalized', phone='phone', phone_normalized='phone_normalized',
            shop_customer_key='external_id', full_name="nullif(trim(name), '')"
        ) }}
    from {{ ref('stg_helpdesk__users') }}
    where
        is_end_user
        and {{ rapport.identity_touched(rapport.identity_record_id('helpdesk.user', 'user_id'), touched) }}

    union all

    select
        {{ identity_record(
            'esp.contact', 'contact_id', 'true', 'coalesce(created_at, updated_at, _extracted_at)',
            'coalesce(updated_at, _extracted_at)', email='email', email_normalized='email_normalized',
            full_name='full_name'
        ) }}
    from {{ ref('stg_esp__contacts') }}
    where {{ rapport.identity_touched(rapport.identity_record_id('esp.contact', 'contact_id'), touched) }}

    union all

    select
        {{ identity_record(
            'esp.audience_member', 'a.audience_member_id', 'false', 'coalesce(c.send_at, a._extracted_at)',
            'a._extracted_at', email='a.email', email_normalized='a.email_normalized'
        ) }}
    from {{ ref('stg_esp__audiences') }} as a
    left join {{ ref('stg_esp__campaigns') }} as c on a.campaign_id = c.campaign_id
    where
        {{ rapport.identity_touched(rapport.identity_record_id('esp.audience_member', 'a.audience_member_id'),
            touched) }}
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
    is_account_like,
    first_seen_at,
    updated_at,
    email,
    email_normalized,
    phone,
    phone_normalized,
    shop_customer_key,
    full_name,
    country,
    {{ rapport.key_bucket("source || ':' || source_id") }} as _part
from prioritised
