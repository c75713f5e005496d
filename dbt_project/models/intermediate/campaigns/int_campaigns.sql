-- One row per campaign, with its cost converted to USD at the send date's rate (the latest earlier rate
-- when that day has none). Cost in USD needs no rate; cost without a usable rate stays null (ROI null).
with campaigns as (
    select
        {%- for column in campaign_attributes() %}
            {{ column }},
        {%- endfor %}
        cost,
        upper(trim(cost_currency)) as cost_currency
    from {{ ref('stg_esp__campaigns') }}
),

fx_rates as (
    select
        rate_date,
        upper(currency) as currency,
        usd_per_unit
    from {{ ref('stg_shop__fx_rates') }}
),

send_date_rates as (
    select
        campaigns.campaign_id,
        fx_rates.usd_per_unit,
        row_number() over (partition by campaigns.campaign_id order by fx_rates.rate_date desc) as newest_first
    from campaigns
    inner join fx_rates
        on
            campaigns.cost_currency = fx_rates.currency
            and fx_rates.rate_date <= cast(campaigns.send_at as date)
)

select
    {%- for column in campaign_attributes() %}
        campaigns.{{ column }},
    {%- endfor %}
    campaigns.cost,
    campaigns.cost_currency,
    case
        when campaigns.cost_currency = 'USD' then cast(campaigns.cost as decimal(18, 4))
        else cast(campaigns.cost * send_date_rates.usd_per_unit as decimal(18, 4))
    end as cost_usd
from campaigns
left join send_date_rates
    on
        campaigns.campaign_id = send_date_rates.campaign_id
        and send_date_rates.newest_first = 1
