{#
  From `records` (one row per source record, with customer_id, source_priority, updated_at, record_id), the
  `columns` of each customer's best record that has `present` set: the preferred source first (shop account
  > helpdesk > ESP > guest order > audience), then the most recently updated. `first_order_by` ranks
  before that ("email_is_rejected asc,": linking identifiers before rejected shared ones).
#}
{% macro best_customer_record(records, columns, present, first_order_by='') -%}
    select
        customer_id,
        {{ columns }}
    from {{ records }}
    where {{ present }} is not null
    qualify row_number() over (
        partition by customer_id
        order by {{ first_order_by }} source_priority asc, updated_at desc nulls last, record_id asc
    ) = 1
{%- endmacro %}
