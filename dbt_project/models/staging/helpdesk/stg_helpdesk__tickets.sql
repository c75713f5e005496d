{{ config(materialized='incremental', unique_key='ticket_id', partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy()) }}
-- Helpdesk tickets: latest version per ticket id, with the nested JSON flattened into columns.
-- Incremental (macros/incremental.sql): the tickets with a version landed since the last build.
{%- set raw = source('helpdesk', 'helpdesk_tickets') %}

select
    id as ticket_id,
    requester_id,
    assignee_id,
    subject,
    lower(trim(status)) as status,
    lower(trim(priority)) as priority,
    lower({{ json_text('via', '$.channel') }}) as via_channel,
    {{ json_text_list('tags') }} as tags,
    lower({{ json_text('satisfaction_rating', '$.score') }}) as satisfaction_score,
    {{ json_text('satisfaction_rating', '$.comment') }} as satisfaction_comment,
    try_cast({{ json_text('metric_set', '$.reply_time_in_minutes.calendar') }} as integer) as reply_time_minutes,
    try_cast({{ json_text('metric_set', '$.full_resolution_time_in_minutes.calendar') }} as integer)
        as full_resolution_time_minutes,
    {{ iso_to_utc_timestamp(json_text('metric_set', '$.solved_at')) }} as solved_at,
    coalesce(try_cast({{ json_text('metric_set', '$.reopens') }} as integer), 0) as reopens,
    created_at,
    updated_at,
    {{ rapport.load_columns('id') }}
from {{ latest_version(raw, 'id', 'updated_at desc', where=rapport.landed_keys_where(raw, 'id')) }}
