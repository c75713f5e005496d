-- ESP webhook events, one row per sg_event_id (landing already de-duplicates webhook retries).
-- Columns named after SQL keywords go through adapter.quote(): a double-quoted name is a string on Spark.
select
    sg_event_id,
    sg_message_id,
    campaign_id,
    email,
    {{ normalized_email('email') }} as email_normalized,
    lower(trim(event)) as event,
    {{ adapter.quote('timestamp') }} as event_unix_ts,
    {{ unix_to_utc_timestamp(adapter.quote('timestamp')) }} as event_at,
    url,
    useragent,
    ip,
    coalesce(sg_machine_open, false) as sg_machine_open,
    lower(trim(event)) = 'open' and not coalesce(sg_machine_open, false) as is_human_open,
    {{ adapter.quote('type') }} as bounce_type,
    reason,
    asm_group_id,
    _run_id,
    _extracted_at
from {{ latest_version(source('esp', 'esp_events'), 'sg_event_id', '_extracted_at desc') }}
