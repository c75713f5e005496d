-- ESP campaigns: the latest daily snapshot of each campaign.
with versions as (
    select * from {{ source('esp', 'esp_campaigns') }}
    {{ latest_version('campaign_id', 'snapshot_date desc') }}
)

select
    campaign_id,
    name,
    subject,
    send_at,
    target_segment,
    holdout_pct,
    cost,
    upper(trim(cost_currency)) as cost_currency,
    snapshot_date,
    _run_id,
    _extracted_at
from versions
