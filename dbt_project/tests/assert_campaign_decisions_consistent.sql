-- The campaign decision columns agree with each other (marts.md "Campaign decisions"): the decision
-- columns are all null exactly when there is no control group; q >= p; the verdict follows from the
-- interval and the MDE; every interval holds its point estimate; ROI bounds follow the revenue bounds.
{%- set meaningful_lift = var('meaningful_lift_abs', 0.02) %}
select campaign_id
from {{ ref('campaign_performance') }}
where
    (not has_control_group and (
        verdict is not null or q_value is not null or mde_abs is not null or lift_cuped_abs is not null
        or incremental_revenue_ci_low is not null or roi_ci_low is not null
    ))
    or (has_control_group and treatment_size > 0 and (verdict is null or q_value is null))
    or q_value < p_value
    or q_value > 1
    or (lift_ci_low > 0 and verdict <> 'increased')
    or (lift_ci_high < 0 and verdict <> 'decreased')
    or (
        lift_ci_low <= 0 and lift_ci_high >= 0 and mde_abs <= {{ meaningful_lift }}
        and verdict <> 'no detectable effect'
    )
    or incremental_revenue_ci_low > incremental_revenue_usd
    or incremental_revenue_ci_high < incremental_revenue_usd
    or lift_cuped_ci_low > lift_cuped_abs
    or lift_cuped_ci_high < lift_cuped_abs
    or roi_ci_low > roi
    or roi_ci_high < roi
