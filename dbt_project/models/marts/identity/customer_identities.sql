{{ config(materialized=rapport.view_on_duckdb()) }}
-- One row per source record that names a person, with the stitched customer it belongs to.
-- A view on DuckDB (a projection of the current pairs: publishing writes it once, as a table, into the
-- published file; docs/marts-incremental.md), a table on Spark.
select
    source,
    source_id,
    customer_id,
    first_assigned_at,
    first_assigned_run_id
from {{ ref('int_customer_ids_assigned') }}
where is_current
