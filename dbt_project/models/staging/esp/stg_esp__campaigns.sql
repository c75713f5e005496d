-- ESP campaigns: the latest daily snapshot of each campaign.
select
    {%- for column in campaign_attributes() %}
        {{ column }},
    {%- endfor %}
    cost,
    upper(trim(cost_currency)) as cost_currency,
    snapshot_date,
    _run_id,
    _extracted_at
from {{ latest_version(source('esp', 'esp_campaigns'), 'campaign_id', 'snapshot_date desc') }}
