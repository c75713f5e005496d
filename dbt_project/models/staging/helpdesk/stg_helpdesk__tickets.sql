-- Helpdesk tickets: latest version per ticket id, with the nested JSON flattened into columns.
with versions as (
    select * from {{ source('helpdesk', 'helpdesk_tickets') }}
    {{ latest_version('id', 'updated_at desc') }}
)

select
    id as ticket_id,
    requester_id,
    assignee_id,
    subject,
    lower(trim(status)) as status,
    lower(trim(priority)) as priority,
    lower(via ->> '$.channel') as via_channel,
    coalesce(from_json(tags, '["VARCHAR"]'), []) as tags,
    lower(satisfaction_rating ->> '$.score') as satisfaction_score,
    satisfaction_rating ->> '$.comment' as satisfaction_comment,
    try_cast(metric_set ->> '$.reply_time_in_minutes.calendar' as integer) as reply_time_minutes,
    try_cast(metric_set ->> '$.full_resolution_time_in_minutes.calendar' as integer)
        as full_resolution_time_minutes,
    {{ iso_to_utc_timestamp("metric_set ->> '$.solved_at'") }} as solved_at,
    coalesce(try_cast(metric_set ->> '$.reopens' as integer), 0) as reopens,
    created_at,
    updated_at,
    _run_id,
    _extracted_at
from versions
