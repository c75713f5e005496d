-- Campaign audiences: one row per campaign and email exactly as in the audience file.
-- "group" is renamed audience_group (a reserved word); audience_member_id is the identity source_id.
select
    campaign_id || ':' || email as audience_member_id,
    campaign_id,
    email,
    lower(trim({{ adapter.quote('group') }})) as audience_group,
    {{ normalized_email('email') }} as email_normalized,
    _run_id,
    _extracted_at
from {{ latest_version(source('esp', 'esp_audiences'), 'campaign_id, email', '_extracted_at desc') }}
