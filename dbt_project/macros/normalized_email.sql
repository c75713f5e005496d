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
    {%- set e = "lower(trim(both ' ' || chr(9) || chr(10) || chr(13) from coalesce(cast(" ~ expr ~ " as "
        ~ dbt.type_string() ~ "), '')))" -%}
    {%- set local = "split_part(" ~ e ~ ", '@', 1)" -%}
    {%- set domain = "split_part(" ~ e ~ ", '@', 2)" -%}
    {%- set plus_domains = "('" ~ (var('plus_address_domains') | join("', '")) ~ "')" -%}
    {%- set local_untagged = "case when " ~ domain ~ " in " ~ plus_domains
        ~ " then split_part(" ~ local ~ ", '+', 1) else " ~ local ~ " end" -%}
    {%- set is_gmail = domain ~ " in ('gmail.com', 'googlemail.com')" -%}
    {%- set local_final = "case when " ~ is_gmail ~ " then replace(" ~ local_untagged ~ ", '.', '') else "
        ~ local_untagged ~ " end" -%}
    (case
        when not {{ rapport.regex_full_match(e, '[^@\s]+@[^@\s.]+(\.[^@\s.]+)+') }} then null
        when not is_valid_email({{ e }}) then null
        when ({{ local_final }}) = '' then null
        else ({{ local_final }}) || '@' || (case when {{ is_gmail }} then 'gmail.com' else {{ domain }} end)
    end)
{%- endmacro %}

{#
  normalized_emails(relation, column='email'): (email, email_normalized, email_is_valid) for each distinct
  non-null `column` of `relation` (a table or CTE name), to join back on the raw address. Every model
  normalises through this: the UDF is_valid_email and the provider lists cost per value, and events repeat
  the same addresses millions of times. email_is_valid is is_valid_email of the address as given (before
  trimming and lowercasing), for email_address_quality: computed here, on the rows a build stages, so that
  no later model validates every address again each day.
#}
{% macro normalized_emails(relation, column='email') -%}
    select
        email,
        {{ rapport.normalized_email('email') }} as email_normalized,
        is_valid_email(email) as email_is_valid
    from (select distinct {{ column }} as email from {{ relation }} where {{ column }} is not null) as addresses
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
