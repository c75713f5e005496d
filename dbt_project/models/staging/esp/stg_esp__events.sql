-- ESP webhook events, one row per sg_event_id (landing already de-duplicates webhook retries).
with versions as (
    select * from {{ source('esp', 'esp_events') }}
    {{ latest_version('sg_event_id', '_extracted_at desc') }}
)

select
    sg_event_id,
    sg_message_id,
    campaign_id,
    email,
    {{ normalized_email('email') }} as email_normalized,
    lower(trim(event)) as event,
    "timestamp" as event_unix_ts,
    {{ unix_to_utc_timestamp('"timestamp"') }} as event_at,
    url,
    useragent,
    ip,
    coalesce(sg_machine_open, false) as sg_machine_open,
    lower(trim(event)) = 'open' and not coalesce(sg_machine_open, false) as is_human_open,
    "type" as bounce_type,
    reason,
    asm_group_id,
    _run_id,
    _extracted_at
from versions
