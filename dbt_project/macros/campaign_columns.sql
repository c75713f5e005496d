{#
  Column lists the campaign models share, so that each list is written once and the models that carry the
  columns through (int_campaigns, campaign_performance, campaign_segment_performance) keep them in order.
#}

{# The campaign's descriptive columns, as stg_esp__campaigns publishes them (cost columns apart: they are
   converted to USD in int_campaigns and published last in campaign_performance). #}
{% macro campaign_attributes() -%}
    {{ return(['campaign_id', 'name', 'subject', 'send_at', 'target_segment', 'holdout_pct']) }}
{%- endmacro %}

{# The delivery funnel counts of int_campaign_funnel, in campaign_performance's order. #}
{% macro campaign_funnel_counts() -%}
    {{ return([
        'processed', 'delivered', 'bounced', 'dropped', 'deferred',
        'unique_opens', 'unique_human_opens', 'unique_machine_opens', 'unique_clicks',
        'unsubscribes', 'spam_reports',
    ]) }}
{%- endmacro %}

{# The per-group lift and revenue columns int_campaign_lift_stats computes, in the order both campaign
   marts publish them (campaign_performance, campaign_segment_performance). #}
{% macro campaign_lift_columns() -%}
    {{ return([
        'treatment_conversions', 'control_conversions',
        'treatment_conversion_rate', 'control_conversion_rate',
        'lift_abs', 'lift_rel', 'lift_ci_low', 'lift_ci_high', 'p_value', 'mde_abs',
        'incremental_conversions',
        'revenue_per_recipient_treatment_usd', 'revenue_per_recipient_control_usd',
        'incremental_revenue_usd', 'incremental_revenue_ci_low', 'incremental_revenue_ci_high',
        'lift_cuped_abs', 'lift_cuped_ci_low', 'lift_cuped_ci_high',
        'incremental_revenue_cuped_usd', 'incremental_revenue_cuped_ci_low', 'incremental_revenue_cuped_ci_high',
    ]) }}
{%- endmacro %}
