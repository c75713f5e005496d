{#
  normalized_email(expr): the matching key of an email address (docs/identity.md, marts.md):
  trim and lowercase; gmail.com / googlemail.com drop dots in the local part and map to gmail.com;
  a +tag is dropped for the providers in var('plus_address_domains'). Anything without exactly one
  '@', a non-empty local part and a dotted domain, or not a valid address (UDF is_valid_email:
  email-validator, syntax only), gives null (no identifier).
  Other models (campaigns) call this on event emails: keep the name and meaning stable.
  Portable: trim(both ... from ...) (Spark reads trim(str, chars) the other way round), the regex through
  rapport.regex_full_match (backslashes in literals differ), split_part and replace behave alike.
#}
{% macro normalized_email(expr) -%}
    {#- coalesce: DuckDB 2.0 fails to bind this expression when constant folding sees an all-null input
        ("BindBuiltinScalarFunction did not return a BoundFunctionExpression"); '' gives null below anyway. -#}
    {%- set e = email_cleaned(expr) -%}
    {%- set domain = "split_part(" ~ e ~ ", '@', 2)" -%}
    {%- set is_gmail = email_is_gmail(domain) -%}
    {%- set local_untagged = email_local_untagged("split_part(" ~ e ~ ", '@', 1)", domain) -%}
    {{ email_key(e, email_local_final(local_untagged, is_gmail), domain, is_gmail) }}
{%- endmacro %}

{# The steps of normalized_email, each an expression of the previous ones: normalized_email nests them into
   one expression; normalized_emails computes them one per column, so each is evaluated once per address. #}
{% macro email_cleaned(expr) -%}
    lower(trim(both ' ' || chr(9) || chr(10) || chr(13) from coalesce(cast({{ expr }} as {{ dbt.type_string() }}), '')))
{%- endmacro %}

{% macro email_is_gmail(domain) -%}
    {{ domain }} in ('gmail.com', 'googlemail.com')
{%- endmacro %}

{% macro email_local_untagged(local_part, domain) -%}
    case when {{ domain }} in ('{{ var('plus_address_domains') | join("', '") }}')
        then split_part({{ local_part }}, '+', 1) else {{ local_part }} end
{%- endmacro %}

{% macro email_local_final(local_untagged, is_gmail) -%}
    case when {{ is_gmail }} then replace({{ local_untagged }}, '.', '') else {{ local_untagged }} end
{%- endmacro %}

{% macro email_key(e, local_final, domain, is_gmail) -%}
    (case
        when not {{ rapport.regex_full_match(e, '[^@\s]+@[^@\s.]+(\.[^@\s.]+)+') }} then null
        when not is_valid_email({{ e }}) then null
        when ({{ local_final }}) = '' then null
        else ({{ local_final }}) || '@' || (case when {{ is_gmail }} then 'gmail.com' else {{ domain }} end)
    end)
{%- endmacro %}

{#
  normalized_emails(relation, column='email'): (email, email_normalized, email_is_valid) for each distinct
  non-null `column` of `relation` (a table, CTE name or parenthesised query with an alias), to join back on
  the raw address. Every model normalises through this: the UDF is_valid_email and the provider lists cost
  per value, and events repeat the same addresses millions of times. email_is_valid is is_valid_email of the
  address as given (before trimming and lowercasing), for email_address_quality: computed here, on the rows a
  build stages, so that no later model validates every address again each day.
  The steps of normalized_email go one per nested select (cleaned address, its parts, the untagged local
  part, the final one): nested into one expression, DuckDB evaluated the cleaned address and the provider
  lists once per place they occur (four joins against the lists per address; half of stg_esp__events' time).
#}
{% macro normalized_emails(relation, column='email') -%}
    select
        email,
        {{ email_key('cleaned', 'local_final', 'domain', 'is_gmail') }} as email_normalized,
        email_is_valid
    from (
        select
            email,
            cleaned,
            domain,
            is_gmail,
            {{ email_local_final('local_untagged', 'is_gmail') }} as local_final,
            email_is_valid
        from (
            select
                email,
                cleaned,
                domain,
                {{ email_is_gmail('domain') }} as is_gmail,
                {{ email_local_untagged('local_part', 'domain') }} as local_untagged,
                email_is_valid
            from (
                select
                    email,
                    cleaned,
                    split_part(cleaned, '@', 1) as local_part,
                    split_part(cleaned, '@', 2) as domain,
                    is_valid_email(email) as email_is_valid
                from (
                    select
                        email,
                        {{ email_cleaned('email') }} as cleaned
                    from (
                        select distinct {{ column }} as email from {{ relation }} where {{ column }} is not null
                    ) as addresses
                ) as cleaned_addresses
            ) as address_parts
        ) as untagged_addresses
    ) as final_addresses
{%- endmacro %}

{#
  normalized_phones(relation, column, country): (phone, country, phone_normalized) for each distinct pair
  of `column` and `country` (an expression, 'null' when the records have no country) of `relation`.
#}
{% macro normalized_phones(relation, column='phone', country='null') -%}
    select
        phone,
        country,
        normalize_phone(phone, country) as phone_normalized
    from (
        select distinct
            {{ column }} as phone,
            cast({{ country }} as {{ dbt.type_string() }}) as country
        from {{ relation }}
        where {{ column }} is not null
    ) as numbers
{%- endmacro %}
