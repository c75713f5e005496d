{{ config(materialized='incremental', unique_key='customer_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- Shop customer accounts: latest version per customer id, with matching keys.
-- Incremental (macros/incremental.sql): a build recomputes the customers with a version landed since the
-- last build, from all their versions; each distinct address and phone is normalised once.
{%- set raw = source('shop', 'shop_customers') %}

with versions as (
    select
        *,
        nullif(upper(trim(country)), '') as country_code
    from {{ latest_version(raw, 'id', 'updated_at desc', where=rapport.landed_keys_where(raw, 'id')) }}
),

emails as (
    {{ normalized_emails('versions') }}
),

phones as (
    {{ normalized_phones('versions', 'phone', 'country_code') }}
)

select
    v.id as customer_id,
    v.email,
    v.first_name,
    v.last_name,
    nullif(trim(concat_ws(' ', trim(v.first_name), trim(v.last_name))), '') as full_name,
    v.phone,
    v.country_code as country,
    v.accepts_marketing,
    v.created_at,
    v.updated_at,
    e.email_normalized,
    e.email_is_valid,
    p.phone_normalized,
    {{ rapport.load_columns('v.id', 'v') }}
from versions as v
left join emails as e on v.email = e.email
left join phones as p on v.phone = p.phone and coalesce(v.country_code, '') = coalesce(p.country, '')
