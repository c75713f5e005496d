-- marts.segment_history has one row per (as_of_date, customer_id).
-- On a day build (docs/quality.md "dbt tests on a day build", issue 16) only the as-of dates that hold a row
-- written since the last passing build are grouped, not the whole log (which grows by a day's changes every
-- day). Every build stamps each row it writes with its statement's time in recorded_at (DuckDB's now()), so
-- the rows written since carry a time after the bound `written_after` (or `since`) of the written-at scope
-- (macros/test_scope.sql; a passing build's own rows are selected too); a key group that newly holds two rows
-- holds such a row, and every row of a group shares its as_of_date, so the group is among those dates' rows.
-- A row written since with a null as_of_date brings the null date in. No scope (no `since`, a full refresh,
-- Spark, or more than a quarter of the rows written since): every row.
{%- set history = ref('segment_history') %}
{%- set written = rapport.test_scope_where(written_at_column='recorded_at', model=history) %}
{%- set scoped = namespace(condition=none) %}
{%- if execute and written is mapping %}
    {%- set dates = run_query('select distinct cast(scoped.as_of_date as varchar) from ' ~ history
        ~ ' as scoped where ' ~ written['where']).columns[0].values() %}
    {%- set parts = namespace(listed=[], null_date=false) %}
    {%- for as_of_date in dates %}
        {%- if as_of_date is none %}
            {%- set parts.null_date = true %}
        {%- else %}
            {%- set parts.listed = parts.listed + ["cast('" ~ as_of_date ~ "' as date)"] %}
        {%- endif %}
    {%- endfor %}
    {#- literals: the scan skips the other dates' row groups -#}
    {%- set scoped.condition = ('as_of_date in (' ~ parts.listed | join(', ') ~ ')' if parts.listed else 'false')
        ~ (' or as_of_date is null' if parts.null_date else '') %}
{%- endif %}

select
    as_of_date,
    customer_id,
    count(*) as n
from {{ history }}
{%- if scoped.condition %}
    -- the dates with a row written since
    where {{ scoped.condition }}
{%- endif %}
group by as_of_date, customer_id
having count(*) > 1
