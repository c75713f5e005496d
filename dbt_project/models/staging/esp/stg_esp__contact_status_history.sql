-- ESP contact status changes: one row per contact and status period (subscribed -> unsubscribed, ...).
-- Versions that repeat the previous status are folded into the period they continue.
with versions as (
    select
        contact_id,
        lower(trim(status)) as status,
        coalesce(updated_at, cast(snapshot_date as timestamp)) as changed_at,
        snapshot_date
    from {{ source('esp', 'esp_contacts') }}
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
    lead(changed_at) over (partition by contact_id order by changed_at, snapshot_date) is null as is_current
from changes
