-- Shop customer accounts: latest version per customer id, with matching keys.
select
    id as customer_id,
    email,
    first_name,
    last_name,
    nullif(trim(concat_ws(' ', trim(first_name), trim(last_name))), '') as full_name,
    phone,
    nullif(upper(trim(country)), '') as country,
    accepts_marketing,
    created_at,
    updated_at,
    {{ normalized_email('email') }} as email_normalized,
    normalize_phone(phone, nullif(upper(trim(country)), '')) as phone_normalized,
    _run_id,
    _extracted_at
from {{ latest_version(source('shop', 'shop_customers'), 'id', 'updated_at desc') }}
