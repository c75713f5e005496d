{#
  The engagement columns of marts.customers, one row per customer with an event: the campaigns delivered,
  human-opened and clicked, and the last click or human open. The model joins it to every customer it builds;
  on DuckDB the model's pre-hook also writes it over the rows of the customers whose engagement alone can have
  changed (macros/customers_touched.sql, docs/marts-incremental.md), so the two share this one definition.
  `customers`: a relation with a column customer_id to restrict to, or none (every customer).
#}
{% macro customer_engagement(customers=none) -%}
    -- one row per customer and campaign first, then counted: three distinct counts over the events would each
    -- group them again (issue 16: 1.8M events for a 1M-person day's touched customers)
    select
        customer_id,
        count(campaign_id) filter (where is_delivered) as emails_delivered,
        count(campaign_id) filter (where is_human_opened) as unique_human_opens,
        count(campaign_id) filter (where is_clicked) as unique_clicks,
        max(last_engaged_at) as last_engaged_at
    from (
        select
            ec.customer_id,
            e.campaign_id,
            bool_or(e.event = 'delivered') as is_delivered,
            bool_or(e.is_human_open) as is_human_opened,
            bool_or(e.event = 'click') as is_clicked,
            max(e.event_at) filter (where e.is_human_open or e.event = 'click') as last_engaged_at
        from {{ ref('stg_esp__events') }} as e
        inner join {{ ref('int_email_customers') }} as ec on e.email_normalized = ec.email_normalized
        {%- if customers %}
            where ec.customer_id in (select t.customer_id from {{ customers }} as t)
        {%- endif %}
        group by ec.customer_id, e.campaign_id
    ) as engagement_campaigns
    group by customer_id
{%- endmacro %}
