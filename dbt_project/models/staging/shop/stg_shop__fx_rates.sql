-- Daily FX rates (USD per unit), latest landing per currency and day.
with versions as (
    select * from {{ source('shop', 'shop_fx_rates') }}
    {{ latest_version('rate_date, upper(trim(currency))', '_extracted_at desc') }}
)

select
    rate_date,
    upper(trim(currency)) as currency,
    usd_per_unit,
    _run_id,
    _extracted_at
from versions
