{{ config(
    materialized=rapport.incremental_on_duckdb(),
    unique_key='email_normalized',
    incremental_strategy='delete+insert',
    pre_hook="{{ rapport.email_customers_delete_touched() }}",
    post_hook="{{ rapport.email_customers_keep_state() }}"
) }}
-- Normalised email -> stitched customer, for resolving any email (ESP events, audiences) to a customer.
-- Only emails that are identifiers of some record and not rejected by the fan-out guard: a non-rejected
-- email links all its records into one cluster, so each maps to exactly one customer.
-- (each email's distinct customers first, then counted: one grouping of the 5.8M identifier rows, not two)
-- Incremental on DuckDB (macros/email_customers_touched.sql, docs/marts-incremental.md): a day build
-- recomputes only the emails whose row can differ from the last build's; its pre-hook deletes their rows.
-- A plain table on Spark.
-- depends_on: {{ ref('stg_shop__customers') }} {{ ref('stg_shop__orders') }} {{ ref('stg_helpdesk__users') }}
-- depends_on: {{ ref('stg_esp__contacts') }} {{ ref('stg_esp__audiences') }}
-- depends_on: {{ source('shop', 'shop_orders') }} {{ source('esp', 'esp_campaigns') }}
{%- set touched = rapport.email_customers_touched_relation() %}

with email_customer_pairs as (
    select distinct
        i.identifier_value as email_normalized,
        a.customer_id
    from {{ ref('int_identity_identifiers_unpivoted') }} as i
    inner join {{ ref('int_identity_fanout_measured') }} as f
        on i.identifier_type = f.identifier_type and i.identifier_value = f.identifier_value
    inner join {{ ref('int_customer_ids_assigned') }} as a
        on i.record_id = a.record_id and a.is_current
    where
        i.identifier_type = 'email' and not f.is_rejected
        {%- if touched %}
            and i.identifier_value in (select t.email_normalized from {{ touched }} as t)
        {%- endif %}
)

select
    email_normalized,
    min(customer_id) as customer_id,
    count(customer_id) as customer_count
from email_customer_pairs
group by email_normalized
