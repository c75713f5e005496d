-- One row per source record that names a person, with the stitched customer it belongs to.
select
    source,
    source_id,
    customer_id,
    first_assigned_at,
    first_assigned_run_id
from {{ ref('int_customer_ids_assigned') }}
where is_current
