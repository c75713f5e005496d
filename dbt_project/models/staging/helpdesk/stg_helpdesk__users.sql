-- Helpdesk users: latest version per user id. Only end-users are people (agents and admins are staff).
-- external_id, when set, is the shop customer id the helpdesk was synced with.
select
    id as user_id,
    name,
    email,
    phone,
    lower(trim(role)) as role,
    lower(trim(role)) = 'end-user' as is_end_user,
    nullif(trim(external_id), '') as external_id,
    created_at,
    updated_at,
    {{ normalized_email('email') }} as email_normalized,
    normalize_phone(phone, null) as phone_normalized,
    _run_id,
    _extracted_at
from {{ latest_version(source('helpdesk', 'helpdesk_users'), 'id', 'updated_at desc') }}
