-- Every record with its cluster: records that share any non-rejected identifier, directly or through a
-- chain, are one person (int_identity_labels: the graph's connected components). The anchor is the
-- cluster's oldest record (smallest record_rank); a record without links is its own cluster.
select
    r.record_id,
    r.record_rank,
    coalesce(l.label, r.record_rank) as anchor_rank,
    anchor.record_id as anchor_record_id
from {{ ref('int_identity_records_unioned') }} as r
left join {{ ref('int_identity_labels') }} as l on r.record_rank = l.node
inner join {{ ref('int_identity_records_unioned') }} as anchor on coalesce(l.label, r.record_rank) = anchor.record_rank
