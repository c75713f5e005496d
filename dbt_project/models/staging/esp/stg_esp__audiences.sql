{{ config(materialized='incremental', unique_key='audience_member_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- Campaign audiences: one row per campaign and email exactly as in the audience file. "group" is renamed
-- audience_group (a reserved word); audience_member_id is the identity source_id.
-- Incremental (macros/incremental.sql): every row of the campaigns with a row landed since the last build.
{%- set raw = source('esp', 'esp_audiences') %}

with audience_rows as (
    select *
    from {{ latest_version(raw, 'campaign_id, email', '_extracted_at desc',
        where=rapport.landed_keys_where(raw, 'campaign_id')) }}
),

emails as (
    {{ normalized_emails('audience_rows') }}
)

select
    r.campaign_id || ':' || r.email as audience_member_id,
    r.campaign_id,
    r.email,
    lower(trim(r.{{ adapter.quote('group') }})) as audience_group,
    e.email_normalized,
    e.email_is_valid,
    {{ rapport.load_columns('r.campaign_id', 'r') }}
from audience_rows as r
left join emails as e on r.email = e.email
