{{ config(materialized='incremental', unique_key='user_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- Helpdesk users: latest version per user id. Only end-users are people (agents and admins are staff).
-- external_id, when set, is the shop customer id the helpdesk was synced with.
-- Incremental (macros/incremental.sql): the users with a version landed since the last build.
{%- set raw = source('helpdesk', 'helpdesk_users') %}

with versions as (
    select *
    from {{ latest_version(raw, 'id', 'updated_at desc', where=rapport.landed_keys_where(raw, 'id')) }}
),

emails as (
    {{ normalized_emails('versions') }}
),

phones as (
    {{ normalized_phones('versions') }}
)

select
    v.id as user_id,
    v.name,
    v.email,
    v.phone,
    lower(trim(v.role)) as role,
    lower(trim(v.role)) = 'end-user' as is_end_user,
    nullif(trim(v.external_id), '') as external_id,
    v.created_at,
    v.updated_at,
    e.email_normalized,
    e.email_is_valid,
    p.phone_normalized,
    {{ rapport.load_columns('v.id', 'v') }}
from versions as v
left join emails as e on v.email = e.email
left join phones as p on v.phone = p.phone
