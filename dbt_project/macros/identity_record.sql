{#
  The columns of one source's branch of int_identity_records_unioned, in the union's order: every branch
  names the same columns, and what a source does not have is a typed null (no `union all by name`, which
  Spark lacks). Arguments are SQL expressions.
#}
{% macro identity_record(
    source, source_id, is_account_like, first_seen_at, updated_at, email='null', email_normalized='null',
    phone='null', phone_normalized='null', shop_customer_key='null', full_name='null', country='null'
) -%}
    {%- set text = dbt.type_string() -%}
    '{{ source }}' as source,
    cast({{ source_id }} as {{ text }}) as source_id,
    {{ is_account_like }} as is_account_like,
    {{ first_seen_at }} as first_seen_at,
    {{ updated_at }} as updated_at,
    cast({{ email }} as {{ text }}) as email,
    cast({{ email_normalized }} as {{ text }}) as email_normalized,
    cast({{ phone }} as {{ text }}) as phone,
    cast({{ phone_normalized }} as {{ text }}) as phone_normalized,
    cast({{ shop_customer_key }} as {{ text }}) as shop_customer_key,
    cast({{ full_name }} as {{ text }}) as full_name,
    cast({{ country }} as {{ text }}) as country
{%- endmacro %}
