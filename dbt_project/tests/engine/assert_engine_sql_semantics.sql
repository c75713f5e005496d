-- The SQL the models rely on means the same on the engine running this build (DuckDB, Spark). Several
-- engine differences are silent (a wrong result, no error): trim(str, chars) reads its arguments the other
-- way round on Spark, a double-quoted name is a string there, backslashes in literals are escapes. This
-- runs the macros that hide them (macros/cross_engine.sql, normalized_email) on fixed inputs, on every
-- build, and returns one row per case whose result differs from the value written here by hand.
-- It reads no model, but depends on the first one the build makes, so that it runs with that layer (the
-- Airflow layer tasks select tests by their parents): depends_on: {{ ref('stg_shop__customers') }}
-- The union's later branches take the first branch's column names:
-- noqa: disable=AL03
{%- set text = dbt.type_string() %}

with cases as (
    select
        'email: trims spaces, tabs and newlines, lowercases' as case_name,
        {{ normalized_email("chr(9) || '  Alice@Example.COM ' || chr(10)") }} as actual,
        'alice@example.com' as expected
    union all
    select
        'email: gmail drops dots and the plus tag, googlemail is gmail',
        {{ normalized_email("'J.O.H.N+news@GoogleMail.com'") }},
        'john@gmail.com'
    union all
    select
        'email: white space inside is no address (regex \s)',
        {{ normalized_email("'two words@example.com'") }},
        null
    union all
    select
        'email: letters s and d are letters (regex backslashes kept)',
        {{ normalized_email("'sid.d@mail.example.co.uk'") }},
        'sid.d@mail.example.co.uk'
    union all
    select
        'email: a domain without a dot is no address',
        {{ normalized_email("'user@localhost'") }},
        null
    union all
    select
        'email: two @ is no address',
        {{ normalized_email("'a@b@c.com'") }},
        null
    union all
    select
        'regex: a full match, escaped dot',
        cast({{ regex_full_match("'a.b'", 'a\.b') }} as {{ text }}),
        'true'
    union all
    select
        'regex: an escaped dot matches no other character',
        cast({{ regex_full_match("'axb'", 'a\.b') }} as {{ text }}),
        'false'
    union all
    select
        'regex: a full match, not a substring',
        cast({{ regex_full_match("'x12'", '[0-9]+') }} as {{ text }}),
        'false'
    union all
    select
        'quoted column named after a keyword',
        (select {{ adapter.quote('group') }} from (select 'treatment' as {{ adapter.quote('group') }}) as t),
        'treatment'
    union all
    select
        'string literal with a quote and a backslash',
        {{ sql_string("it's a\\b") }},
        concat('it', chr(39), 's a', chr(92), 'b')
    union all
    select
        'trim both of listed characters',
        trim(both 'x' from 'xxaxx'),
        'a'
    union all
    select
        'unix seconds to naive UTC',
        cast({{ unix_to_utc_timestamp('1740819600') }} as {{ text }}),
        '2025-03-01 09:00:00'
    union all
    select
        'ISO 8601 with an offset to naive UTC',
        cast({{ iso_to_utc_timestamp("'2025-01-01T05:00:00+02:00'") }} as {{ text }}),
        '2025-01-01 03:00:00'
    union all
    select
        'timestamp as ISO text to the microsecond',
        {{ iso_micros_text("cast('2025-03-01 09:05:07.2' as timestamp)") }},
        '2025-03-01T09:05:07.200000'
    union all
    select
        'JSON text at a path',
        {{ json_text(sql_string('{"a": {"b": "x"}}'), '$.a.b') }},
        'x'
    union all
    select
        'integer division rounds down',
        cast({{ int_div('7', '2') }} as {{ text }}),
        '3'
    union all
    select
        'decimal ratio rounds half up',
        cast({{ decimal_ratio('cast(95.3059 as decimal(18, 4))', '2') }} as {{ text }}),
        '47.6530'
    union all
    select
        'calendar days between dates',
        cast({{ dbt.datediff("cast('2025-01-01' as date)", "cast('2025-03-01' as date)", 'day') }} as {{ text }}),
        '59'
    union all
    select
        'one row per day, both ends included',
        cast((
            select count(*) from (
                select {{ days_between("cast('2025-01-30' as date)", "cast('2025-02-02' as date)", 'd') }}
            ) as days
        ) as {{ text }}),
        '4'
    union all
    select
        'phone UDF registered',
        normalize_phone('+1 415-555-0100', null),
        '+14155550100'
)

select
    case_name,
    actual,
    expected
from cases
where actual is distinct from expected
