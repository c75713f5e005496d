-- The identity graph: record -> identifier, for identifier values that can link (carried by at least
-- two records and not rejected by the fan-out guard). Nodes are stable record keys (record_key); ident
-- numbers the values within this build (compact join key for the propagation), identifier_type and
-- identifier_value name them across builds (what an incremental build diffs, int_identity_labels).
with linking_identifiers as (
    select
        identifier_type,
        identifier_value,
        dense_rank() over (order by identifier_type, identifier_value) as ident
    from {{ ref('int_identity_fanout_measured') }}
    where not is_rejected and records > 1
)

select distinct
    r.record_key as node,
    li.ident,
    li.identifier_type,
    li.identifier_value
from {{ ref('int_identity_identifiers_unpivoted') }} as i
inner join linking_identifiers as li
    on i.identifier_type = li.identifier_type and i.identifier_value = li.identifier_value
inner join {{ ref('int_identity_records_unioned') }} as r on i.record_id = r.record_id
