-- Each customer's segments per as-of date, accumulated over runs. Keyed on (as_of_date, customer_id);
-- a run replaces every row of its own as-of date (delete+insert on as_of_date), so re-running the same
-- as-of date is idempotent and a customer id that disappeared since (identity merge) leaves no stale row.
{{
    config(
        materialized='incremental',
        unique_key='as_of_date',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        full_refresh=false
    )
}}

select
    as_of_date,
    customer_id,
    rfm_segment,
    lifecycle_stage,
    value_tier,
    engagement_tier,
    support_health,
    r_score,
    f_score,
    m_score,
    recency_days,
    frequency,
    monetary_usd,
    cast('{{ var("run_id", "manual") }}' as varchar) as run_id,
    cast(now() at time zone 'UTC' as timestamp) as recorded_at
from {{ ref('customer_segments') }}
