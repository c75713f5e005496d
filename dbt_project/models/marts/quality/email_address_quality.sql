-- Email addresses that are no identifier because they are not syntactically valid addresses
-- (is_valid_email: email-validator, syntax only), counted per kind of source record. They are kept on
-- their records for display but link nobody and never reach an audience file. Each distinct address is
-- validated once: the Python UDF is the costly part, and events repeat the same few addresses.
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
            email
        from {{ ref(model) }}
        {%- if condition %}
            where {{ condition }}
        {%- endif %}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

addresses as (
    select
        source,
        email,
        count(*) as records
    from records
    where trim(coalesce(email, '')) <> ''
    group by source, email
),

checked as (
    select
        source,
        records,
        not is_valid_email(email) as is_invalid
    from addresses
)

select
    source,
    cast(sum(records) as bigint) as records_with_email,
    cast(sum(case when is_invalid then records else 0 end) as bigint) as invalid_emails,
    cast(sum(case when is_invalid then records else 0 end) as double) / sum(records) as invalid_share
from checked
group by source
