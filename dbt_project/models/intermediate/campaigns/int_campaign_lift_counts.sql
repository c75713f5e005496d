-- Holdout sufficient statistics per campaign (grain 'campaign', rfm_segment null) and per campaign and
-- pre-send rfm_segment (grain 'campaign_segment'): the inputs of the lift statistics
-- (int_campaign_lift_stats), so that no member-level data is needed there.
-- Per member: y_conv = converted (0/1), x_orders = valid orders in the pre-period, y_rev = window revenue
-- and x_rev = pre-period revenue. Two members of one group who are the same person share their orders:
-- only the member flagged counts_revenue carries the revenue (y_rev, x_rev), the other 0, so a group's
-- revenue sums each order once. Per group: size, sums, sample variances (var_samp, null below 2 members)
-- and covariances; 'pooled' columns are over both groups together (the CUPED theta).
{%- set groups = ['treatment', 'control'] %}
{#- each grain and the rfm_segment its rows carry #}
{%- set grain_segments = [
    ('campaign', 'cast(null as ' ~ dbt.type_string() ~ ')'),
    ('campaign_segment', 'pre_send_rfm_segment'),
] %}
{#- the CUPED pairs: (outcome, its column, covariate, its column) #}
{%- set metrics = [
    ('conversion', 'y_conv', 'pre_orders', 'x_orders'),
    ('revenue', 'y_rev', 'pre_revenue', 'x_rev'),
] %}

with members as (
    select
        campaign_id,
        pre_send_rfm_segment,
        audience_group,
        cast(case when converted then 1 else 0 end as double) as y_conv,
        cast(pre_orders as double) as x_orders,
        cast(case when counts_revenue then window_revenue_usd else 0 end as double) as y_rev,
        cast(case when counts_revenue then pre_revenue_usd else 0 end as double) as x_rev,
        case when counts_revenue then window_revenue_usd else 0 end as counted_revenue_usd
    from {{ ref('int_campaign_members') }}
),

grains as (
    {%- for grain, rfm_segment in grain_segments %}
        select
            '{{ grain }}' as grain,
            campaign_id,
            {{ rfm_segment }} as rfm_segment,
            audience_group,
            y_conv,
            x_orders,
            y_rev,
            x_rev,
            counted_revenue_usd
        from members
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select
    grain,
    campaign_id,
    rfm_segment,
    {%- for g in groups %}
        count(case when audience_group = '{{ g }}' then 1 end) as {{ g }}_size,
    {%- endfor %}
    {%- for g in groups %}
        count(case when audience_group = '{{ g }}' and y_conv = 1 then 1 end) as {{ g }}_conversions,
    {%- endfor %}
    {%- for g in groups %}
        coalesce(sum(case when audience_group = '{{ g }}' then counted_revenue_usd end), 0) as {{ g }}_revenue_usd,
    {%- endfor %}
    {%- for g in groups %}
        {%- for outcome, y, covariate, x in metrics %}
            var_samp(case when audience_group = '{{ g }}' then {{ y }} end) as {{ g }}_{{ outcome }}_var,
            avg(case when audience_group = '{{ g }}' then {{ x }} end) as {{ g }}_{{ covariate }}_mean,
            var_samp(case when audience_group = '{{ g }}' then {{ x }} end) as {{ g }}_{{ covariate }}_var,
            covar_samp(
                case when audience_group = '{{ g }}' then {{ y }} end,
                case when audience_group = '{{ g }}' then {{ x }} end
            ) as {{ g }}_{{ outcome }}_{{ covariate }}_cov,
        {%- endfor %}
    {%- endfor %}
    {%- for outcome, y, covariate, x in metrics %}
        var_samp({{ x }}) as pooled_{{ covariate }}_var,
        covar_samp({{ y }}, {{ x }}) as pooled_{{ outcome }}_{{ covariate }}_cov,
    {%- endfor %}
    count(*) as audience_size
from grains
group by grain, campaign_id, rfm_segment
