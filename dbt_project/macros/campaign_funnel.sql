{#
  The event condition each count of the campaign funnel (int_campaign_funnel; the counts and their order:
  campaign_funnel_counts() in campaign_columns.sql) counts recipients by. Bit i (0-based) of
  int_campaign_recipient_flags.flags is set when the recipient has an event matching the i-th count's
  condition, so the funnel counts a campaign's recipients with that bit set. The conditions read the columns
  event and is_machine_open (coalesce(sg_machine_open, false)).
#}
{% macro campaign_funnel_conditions() -%}
    {{ return({
        'processed': "event = 'processed'",
        'delivered': "event = 'delivered'",
        'bounced': "event = 'bounce'",
        'dropped': "event = 'dropped'",
        'deferred': "event = 'deferred'",
        'unique_opens': "event = 'open'",
        'unique_human_opens': "event = 'open' and not is_machine_open",
        'unique_machine_opens': "event = 'open' and is_machine_open",
        'unique_clicks': "event = 'click'",
        'unsubscribes': "event in ('unsubscribe', 'group_unsubscribe')",
        'spam_reports': "event = 'spamreport'",
    }) }}
{%- endmacro %}

{# An event's bits: the sum of 2^i over the conditions it matches (an event matches several: open and
   human open). #}
{% macro campaign_funnel_event_bits() -%}
    {%- set conditions = campaign_funnel_conditions() -%}
    {%- for name in campaign_funnel_counts() %}
        {{ '+ ' if not loop.first }}case when {{ conditions[name] }} then {{ 2 ** loop.index0 }} else 0 end
    {%- endfor %}
{%- endmacro %}

{# When int_campaign_recipient_flags adds the events landed since its last build to its rows (an incremental
   DuckDB build with `since`): the latest landing its rows hold, as a timestamp literal (the events' scan then
   skips, by their zone maps, the row groups landed before: events are appended in landing order); else none,
   and it groups every event (first build, --full-refresh, --empty, Spark's plain table). Called unqualified,
   so that a unit test can override it. #}
{% macro campaign_recipient_flags_landed_after() -%}
    {#- a dbt unit test renders the model with no relation of its own (`this` is none): the full SQL -#}
    {%- if not execute or this is none or not is_incremental() or rapport.increment_since() is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set latest = run_query('select cast(max(last_extracted_at) as ' ~ dbt.type_string() ~ ') from '
        ~ this).columns[0].values()[0] -%}
    {{ return("cast('" ~ (latest or '1900-01-01 00:00:00') ~ "' as timestamp)") }}
{%- endmacro %}
