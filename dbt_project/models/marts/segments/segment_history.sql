-- Each customer's segments per as-of date, accumulated over runs. Keyed on (as_of_date, customer_id);
-- a run replaces every row of its own as-of date (delete+insert on as_of_date; on Spark insert_overwrite of
-- the as_of_date partition), so re-running the same
-- as-of date is idempotent and a customer id that disappeared since (identity merge) leaves no stale row.
{{
    config(
        materialized='incremental',
        unique_key='as_of_date',
        incremental_strategy=rapport.incremental_replace_strategy(),
        partition_by=['as_of_date'],
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
    cast('{{ var("run_id", "manual") }}' as {{ dbt.type_string() }}) as run_id,
    {{ utc_now() }} as recorded_at
from {{ ref('customer_segments') }}
