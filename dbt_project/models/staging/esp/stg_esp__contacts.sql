{{ config(materialized='incremental', unique_key='contact_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- ESP contacts: latest version per contact id (by updated_at, then the snapshot it was seen in).
-- Incremental (macros/incremental.sql): the contacts with a version landed since the last build.
{%- set raw = source('esp', 'esp_contacts') %}

with versions as (
    select *
    from {{ latest_version(raw, 'contact_id', 'updated_at desc nulls last, snapshot_date desc',
        where=rapport.landed_keys_where(raw, 'contact_id')) }}
),

emails as (
    {{ normalized_emails('versions') }}
)

select
    v.contact_id,
    v.email,
    v.first_name,
    v.last_name,
    nullif(trim(concat_ws(' ', trim(v.first_name), trim(v.last_name))), '') as full_name,
    lower(trim(v.status)) as status,
    v.created_at,
    v.updated_at,
    v.snapshot_date,
    e.email_normalized,
    e.email_is_valid,
    {{ rapport.load_columns('v.contact_id', 'v') }}
from versions as v
left join emails as e on v.email = e.email
