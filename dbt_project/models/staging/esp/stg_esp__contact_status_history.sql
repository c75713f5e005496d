{{ config(materialized='incremental', unique_key='contact_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- ESP contact status changes: one row per contact and status period (subscribed -> unsubscribed, ...).
-- Versions that repeat the previous status are folded into the period they continue.
-- Incremental (macros/incremental.sql): the contacts with a version landed since the last build, from all
-- their versions.
{%- set raw = source('esp', 'esp_contacts') %}
{%- set touched = rapport.landed_keys_where(raw, 'contact_id') %}

with versions as (
    select
        contact_id,
        lower(trim(status)) as status,
        coalesce(updated_at, cast(snapshot_date as timestamp)) as changed_at,
        snapshot_date
    from {{ raw }}
    {%- if touched %}
        where {{ touched }}
    {%- endif %}
    -- the same version can land from several snapshots: keep its first sighting
    qualify row_number() over (
        partition by contact_id, updated_at order by snapshot_date, _extracted_at
    ) = 1
),

ordered as (
    select
        *,
        lag(status) over (partition by contact_id order by changed_at, snapshot_date) as previous_status
    from versions
),

changes as (
    select * from ordered
    where previous_status is null or previous_status is distinct from status
)

select
    contact_id,
    status,
    previous_status,
    changed_at as valid_from,
    lead(changed_at) over (partition by contact_id order by changed_at, snapshot_date) as valid_to,
    snapshot_date as first_seen_snapshot_date,
    lead(changed_at) over (partition by contact_id order by changed_at, snapshot_date) is null as is_current,
    {{ rapport.key_bucket('contact_id') }} as _part
from changes
