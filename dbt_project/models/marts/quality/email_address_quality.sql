-- Email addresses that are no identifier because they are not syntactically valid addresses
-- (is_valid_email: email-validator, syntax only), counted per kind of source record. They are kept on
-- their records for display but link nobody and never reach an audience file. The staging models validate
-- each address when they stage its record (email_is_valid, macro normalized_emails): the Python UDF is the
-- costly part, and a daily build then validates only the addresses that landed.
{%- set record_sources = [
    ('orders.customer', 'stg_shop__customers', none),
    ('orders.guest_order', 'stg_shop__orders', 'is_guest'),
    ('helpdesk.user', 'stg_helpdesk__users', 'is_end_user'),
    ('esp.contact', 'stg_esp__contacts', none),
    ('esp.audience_member', 'stg_esp__audiences', none),
    ('esp.event', 'stg_esp__events', none),
] %}

with records as (
    {%- for source_name, model, condition in record_sources %}
        select
            '{{ source_name }}' as source,
            email,
            email_is_valid
        from {{ ref(model) }}
        {%- if condition %}
            where {{ condition }}
        {%- endif %}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

with_email as (
    select
        source,
        not email_is_valid as is_invalid
    from records
    where trim(coalesce(email, '')) <> ''
)

select
    source,
    cast(count(*) as bigint) as records_with_email,
    cast(sum(case when is_invalid then 1 else 0 end) as bigint) as invalid_emails,
    cast(sum(case when is_invalid then 1 else 0 end) as double) / count(*) as invalid_share
from with_email
group by source
