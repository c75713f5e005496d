-- ESP contacts: latest version per contact id (by updated_at, then the snapshot it was seen in).
select
    contact_id,
    email,
    first_name,
    last_name,
    nullif(trim(concat_ws(' ', trim(first_name), trim(last_name))), '') as full_name,
    lower(trim(status)) as status,
    created_at,
    updated_at,
    snapshot_date,
    {{ normalized_email('email') }} as email_normalized,
    _run_id,
    _extracted_at
from {{ latest_version(source('esp', 'esp_contacts'), 'contact_id', 'updated_at desc nulls last, snapshot_date desc') }}
