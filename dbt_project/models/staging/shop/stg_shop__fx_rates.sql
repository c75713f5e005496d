-- Daily FX rates (USD per unit), latest landing per currency and day.
select
    rate_date,
    upper(trim(currency)) as currency,
    usd_per_unit,
    _run_id,
    _extracted_at
from {{ latest_version(source('shop', 'shop_fx_rates'), 'rate_date, upper(trim(currency))', '_extracted_at desc') }}
