-- The identity graph: record -> identifier, for identifier values that can link (carried by at least
-- two records and not rejected by the fan-out guard). Nodes are integer record ranks.
with linking_identifiers as (
    select
        identifier_type,
        identifier_value,
        dense_rank() over (order by identifier_type, identifier_value) as ident
    from {{ ref('int_identity_fanout_measured') }}
    where not is_rejected and records > 1
)

select distinct
    r.record_rank as node,
    li.ident
from {{ ref('int_identity_identifiers_unpivoted') }} as i
inner join linking_identifiers as li
    on i.identifier_type = li.identifier_type and i.identifier_value = li.identifier_value
inner join {{ ref('int_identity_records_unioned') }} as r on i.record_id = r.record_id
