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

-- Counted per kind of record from two scans: every non-null address, less the blank ones (empty after
-- trim). Only an address whose first character is a space (below '!') or not ASCII (trim also strips
-- Unicode spaces) can be blank, and the scan for those skips, by its zone maps, every row group whose
-- addresses all start with a printable ASCII character (all of them at 1M people): trimming every address
-- cost 2.7 s a day there, mostly the 9.3M events (issue 16).
with counts as (
    {%- for source_name, model, condition in record_sources %}
        select
            '{{ source_name }}' as source,
            false as is_blank,
            count(email) as records,
            sum(case when email is not null and not email_is_valid then 1 else 0 end) as invalid
        from {{ ref(model) }}
        {%- if condition %}
            where {{ condition }}
        {%- endif %}
        union all
        select
            '{{ source_name }}' as source,
            true as is_blank,
            count(*) as records,
            sum(case when not email_is_valid then 1 else 0 end) as invalid
        from {{ ref(model) }}
        where
            (email < '!' or email >= chr(128)) and trim(email) = ''
            {%- if condition %}
                and {{ condition }}
            {%- endif %}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

with_email as (
    select
        source,
        sum(case when is_blank then -records else records end) as records_with_email,
        sum(case when is_blank then -coalesce(invalid, 0) else coalesce(invalid, 0) end) as invalid_emails
    from counts
    group by source
)

select
    source,
    cast(records_with_email as bigint) as records_with_email,
    cast(invalid_emails as bigint) as invalid_emails,
    cast(invalid_emails as double) / records_with_email as invalid_share
from with_email
where records_with_email > 0
