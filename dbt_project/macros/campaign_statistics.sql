{#
  Closed-form campaign statistics as SQL expressions (docs/segments_and_campaigns.md). Portable across
  DuckDB and Spark: plain arithmetic, sqrt, case, window functions, and the distribution UDFs
  rapport_norm_cdf / rapport_norm_ppf / rapport_t_ppf (rapport.experiments.distributions). Arguments are
  SQL expressions of type double; each is wrapped in parentheses, so any expression may be passed.
#}

{# x limited to [low, high]; null stays null (greatest/least would skip a null argument and return a bound) #}
{% macro clamp(x, low, high=none) -%}
    case
        when ({{ x }}) < {{ low }} then {{ low }}
        {%- if high is not none %}
        when ({{ x }}) > {{ high }} then {{ high }}
        {%- endif %}
        else ({{ x }})
    end
{%- endmacro %}

{# One bound of the Wilson score interval of a proportion, as statsmodels proportion_confint(method='wilson')
   computes it, clipped to [0, 1]. side: 'low' or 'high'. #}
{% macro wilson_bound(rate, n, z, side) -%}
    {%- set p, n, z = '(' ~ rate ~ ')', '(' ~ n ~ ')', '(' ~ z ~ ')' -%}
    {%- set bound -%}
        ({{ p }} + {{ z }} * {{ z }} / (2 * {{ n }})) / (1 + {{ z }} * {{ z }} / {{ n }})
        {{ '-' if side == 'low' else '+' }} {{ z }}
        * sqrt({{ p }} * (1 - {{ p }}) / {{ n }} + {{ z }} * {{ z }} / (4 * {{ n }} * {{ n }}))
        / (1 + {{ z }} * {{ z }} / {{ n }})
    {%- endset -%}
    {{ clamp(bound, 0.0, 1.0) }}
{%- endmacro %}

{# Newcombe's hybrid score interval of p_t - p_c (Newcombe 1998, method 10) from the two Wilson intervals:
   low = d - sqrt((p_t - low_t)^2 + (high_c - p_c)^2), high = d + sqrt((high_t - p_t)^2 + (p_c - low_c)^2). #}
{% macro newcombe_bound(p_t, low_t, high_t, p_c, low_c, high_c, side) -%}
    {%- if side == 'low' -%}
    ({{ p_t }}) - ({{ p_c }}) - sqrt(
        (({{ p_t }}) - ({{ low_t }})) * (({{ p_t }}) - ({{ low_t }}))
        + (({{ high_c }}) - ({{ p_c }})) * (({{ high_c }}) - ({{ p_c }}))
    )
    {%- else -%}
    ({{ p_t }}) - ({{ p_c }}) + sqrt(
        (({{ high_t }}) - ({{ p_t }})) * (({{ high_t }}) - ({{ p_t }}))
        + (({{ p_c }}) - ({{ low_c }})) * (({{ p_c }}) - ({{ low_c }}))
    )
    {%- endif -%}
{%- endmacro %}

{# Two-sided p-value of the pooled two-proportion z-test (statsmodels proportions_ztest). When the pooled
   rate is 0 or 1 the variance is 0 and the groups do not differ: 1. #}
{% macro pooled_z_p_value(p_t, n_t, p_c, n_c, p_pooled) -%}
    case
        when ({{ p_pooled }}) <= 0 or ({{ p_pooled }}) >= 1 then 1.0
        else 2 * rapport_norm_cdf(-abs(
            (({{ p_t }}) - ({{ p_c }}))
            / sqrt(({{ p_pooled }}) * (1 - ({{ p_pooled }})) * (1 / ({{ n_t }}) + 1 / ({{ n_c }})))
        ))
    end
{%- endmacro %}

{# Welch-Satterthwaite degrees of freedom from the squared standard errors of the two means (var / n);
   null when both are 0 (no variation: no t distribution to speak of). #}
{% macro welch_df(se2_t, n_t, se2_c, n_c) -%}
    (({{ se2_t }}) + ({{ se2_c }})) * (({{ se2_t }}) + ({{ se2_c }}))
    / nullif(
        ({{ se2_t }}) * ({{ se2_t }}) / (({{ n_t }}) - 1) + ({{ se2_c }}) * ({{ se2_c }}) / (({{ n_c }}) - 1),
        0
    )
{%- endmacro %}

{# CUPED (Deng et al. 2013): theta = cov(y, x) / var(x) over both groups; 0 when x does not vary. #}
{% macro cuped_theta(pooled_cov, pooled_var) -%}
    case when ({{ pooled_var }}) > 0 then ({{ pooled_cov }}) / ({{ pooled_var }}) else 0.0 end
{%- endmacro %}

{# Sample variance of y - theta * x within a group, from that group's var(y), var(x) and cov(y, x). The
   terms cancel when x explains y: anything within 1e-10 of their size is rounding and counts as 0 (else a
   zero variance came out as +-1e-12, and its interval changed with the order the sums were added in). #}
{% macro cuped_adjusted_var(var_y, var_x, cov_yx, theta) -%}
    {%- set adjusted -%}
        ({{ var_y }}) + ({{ theta }}) * ({{ theta }}) * ({{ var_x }}) - 2 * ({{ theta }}) * ({{ cov_yx }})
    {%- endset -%}
    case
        when ({{ adjusted }}) <= 1e-10 * (({{ var_y }}) + ({{ theta }}) * ({{ theta }}) * ({{ var_x }})) then 0.0
        else ({{ adjusted }})
    end
{%- endmacro %}

{# Standard error of the difference of the groups' CUPED-adjusted means, from int_campaign_lift_counts'
   columns {group}_{outcome}_var, {group}_{covariate}_var, {group}_{outcome}_{covariate}_cov and the
   group sizes n_t, n_c. #}
{% macro cuped_standard_error(outcome, covariate, theta) -%}
    sqrt(
        {%- for g, n in [('treatment', 'n_t'), ('control', 'n_c')] %}
        {{ '+ ' if not loop.first }}{{ cuped_adjusted_var(g ~ '_' ~ outcome ~ '_var', g ~ '_' ~ covariate ~ '_var',
            g ~ '_' ~ outcome ~ '_' ~ covariate ~ '_cov', theta) }} / {{ n }}
        {%- endfor %}
    )
{%- endmacro %}

{# Benjamini-Hochberg adjusted p-value (statsmodels multipletests(method='fdr_bh')): the running minimum of
   p * m / rank from the largest p-value down, capped at 1. p_rank is 1..m in ascending p order (ties
   broken by any fixed order: tied p-values get the same q either way). p * (m / rank), not p * m / rank:
   m / rank is exactly 1.0 or above, so the double never rounds below p (0.7 * 3 / 3 is 0.6999999999999998). #}
{% macro benjamini_hochberg_q(p_value, p_rank, tests) -%}
    least(1.0, min(({{ p_value }}) * (cast({{ tests }} as double) / ({{ p_rank }}))) over (
        order by {{ p_rank }} desc rows between unbounded preceding and current row
    ))
{%- endmacro %}
