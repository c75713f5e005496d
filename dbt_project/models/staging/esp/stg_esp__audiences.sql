-- Campaign audiences: one row per campaign and email exactly as in the audience file.
-- "group" is renamed audience_group (a reserved word); audience_member_id is the identity source_id.
with versions as (
    select * from {{ source('esp', 'esp_audiences') }}
    {{ latest_version('campaign_id, email', '_extracted_at desc') }}
)

select
    campaign_id || ':' || email as audience_member_id,
    campaign_id,
    email,
    lower(trim("group")) as audience_group,
    {{ normalized_email('email') }} as email_normalized,
    _run_id,
    _extracted_at
from versions
