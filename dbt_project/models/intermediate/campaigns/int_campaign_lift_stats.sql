-- Holdout lift statistics per row of int_campaign_lift_counts (grains 'campaign' and 'campaign_segment'),
-- intent to treat, from the groups' sufficient statistics (docs/segments_and_campaigns.md, marts.md):
--   rates, lift_abs, lift_rel; lift_ci_low/high: Newcombe hybrid score interval; p_value: pooled
--   two-proportion z-test; mde_abs: smallest lift detectable with var mde_power at level var mde_alpha;
--   incremental revenue with a Welch interval (t quantile, Welch-Satterthwaite df); CUPED-adjusted
--   conversion lift and incremental revenue with normal intervals (pre-period covariates).
-- Intervals at var lift_confidence_level. Every statistic needs both groups: null without control (or
-- treated) members; a variance needs 2 members in each group. Only the distribution functions are UDFs.
{%- set confidence = var('lift_confidence_level', 0.95) %}
{%- set mde_alpha = var('mde_alpha', 0.05) %}
{%- set mde_power = var('mde_power', 0.8) %}

with counts as (
    select * from {{ ref('int_campaign_lift_counts') }}
),

-- UDF arguments cast to double: literals are decimals, and Spark hands a Python UDF decimal.Decimal values
quantiles as (
    select
        cast(1 - (1 - {{ confidence }}) / 2 as double) as interval_quantile,
        rapport_norm_ppf(cast(1 - (1 - {{ confidence }}) / 2 as double)) as z_interval,
        rapport_norm_ppf(cast(1 - {{ mde_alpha }} / 2 as double))
        + rapport_norm_ppf(cast({{ mde_power }} as double)) as z_mde
),

-- sizes as doubles; null unless both groups have members, which nulls every statistic below
compared as (
    select
        counts.*,
        quantiles.*,
        case
            when counts.treatment_size > 0 and counts.control_size > 0 then cast(counts.treatment_size as double)
        end as n_t,
        case
            when counts.treatment_size > 0 and counts.control_size > 0 then cast(counts.control_size as double)
        end as n_c,
        case
            when counts.treatment_size > 0
                then counts.treatment_conversions / cast(counts.treatment_size as double)
        end as treatment_conversion_rate,
        case
            when counts.treatment_size > 0
                then cast(counts.treatment_revenue_usd as double) / counts.treatment_size
        end as revenue_per_recipient_treatment_usd,
        case
            when counts.control_size > 0 then cast(counts.control_revenue_usd as double) / counts.control_size
        end as revenue_per_recipient_control_usd
    from counts
    cross join quantiles
),

rates as (
    select
        *,
        control_conversions / n_c as p_c,
        treatment_conversions / n_t as p_t,
        (treatment_conversions + control_conversions) / (n_t + n_c) as p_pooled,
        treatment_revenue_var / n_t as revenue_se2_t,
        control_revenue_var / n_c as revenue_se2_c,
        {{ cuped_theta('pooled_conversion_pre_orders_cov', 'pooled_pre_orders_var') }} as cuped_theta_conversion,
        {{ cuped_theta('pooled_revenue_pre_revenue_cov', 'pooled_pre_revenue_var') }} as cuped_theta_revenue
    from compared
),

bounds as (
    select
        *,
        {{ wilson_bound('p_t', 'n_t', 'z_interval', 'low') }} as wilson_low_t,
        {{ wilson_bound('p_t', 'n_t', 'z_interval', 'high') }} as wilson_high_t,
        {{ wilson_bound('p_c', 'n_c', 'z_interval', 'low') }} as wilson_low_c,
        {{ wilson_bound('p_c', 'n_c', 'z_interval', 'high') }} as wilson_high_c,
        revenue_per_recipient_treatment_usd - revenue_per_recipient_control_usd as revenue_diff,
        sqrt(revenue_se2_t + revenue_se2_c) as revenue_se,
        {{ welch_df('revenue_se2_t', 'n_t', 'revenue_se2_c', 'n_c') }} as revenue_welch_df,
        p_t - p_c
        - cuped_theta_conversion * (treatment_pre_orders_mean - control_pre_orders_mean) as lift_cuped_abs,
        {{ cuped_standard_error('conversion', 'pre_orders', 'cuped_theta_conversion') }} as lift_cuped_se,
        revenue_per_recipient_treatment_usd - revenue_per_recipient_control_usd
        - cuped_theta_revenue * (treatment_pre_revenue_mean - control_pre_revenue_mean) as revenue_cuped_diff,
        {{ cuped_standard_error('revenue', 'pre_revenue', 'cuped_theta_revenue') }} as revenue_cuped_se
    from rates
),

welch as (
    select
        *,
        rapport_t_ppf(interval_quantile, revenue_welch_df) as revenue_t_quantile
    from bounds
)

select
    grain,
    campaign_id,
    rfm_segment,
    treatment_size,
    control_size,
    treatment_conversions,
    control_conversions,
    treatment_revenue_usd,
    control_revenue_usd,
    treatment_conversion_rate,
    p_c as control_conversion_rate,
    p_t - p_c as lift_abs,
    (p_t - p_c) / nullif(p_c, 0) as lift_rel,
    {{ newcombe_bound('p_t', 'wilson_low_t', 'wilson_high_t', 'p_c', 'wilson_low_c', 'wilson_high_c', 'low') }}
        as lift_ci_low,
    {{ newcombe_bound('p_t', 'wilson_low_t', 'wilson_high_t', 'p_c', 'wilson_low_c', 'wilson_high_c', 'high') }}
        as lift_ci_high,
    {{ pooled_z_p_value('p_t', 'n_t', 'p_c', 'n_c', 'p_pooled') }} as p_value,
    case
        when p_pooled > 0 then z_mde * sqrt(p_pooled * (1 - p_pooled) * (1 / n_t + 1 / n_c))
    end as mde_abs,
    (p_t - p_c) * n_t as incremental_conversions,
    revenue_per_recipient_treatment_usd,
    revenue_per_recipient_control_usd,
    revenue_diff * n_t as incremental_revenue_usd,
    (revenue_diff - revenue_t_quantile * revenue_se) * n_t as incremental_revenue_ci_low,
    (revenue_diff + revenue_t_quantile * revenue_se) * n_t as incremental_revenue_ci_high,
    revenue_welch_df,
    lift_cuped_abs,
    lift_cuped_abs - z_interval * lift_cuped_se as lift_cuped_ci_low,
    lift_cuped_abs + z_interval * lift_cuped_se as lift_cuped_ci_high,
    revenue_cuped_diff * n_t as incremental_revenue_cuped_usd,
    (revenue_cuped_diff - z_interval * revenue_cuped_se) * n_t as incremental_revenue_cuped_ci_low,
    (revenue_cuped_diff + z_interval * revenue_cuped_se) * n_t as incremental_revenue_cuped_ci_high,
    cuped_theta_conversion,
    cuped_theta_revenue,
    cast({{ confidence }} as double) as confidence_level
from welch
