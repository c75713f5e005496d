-- Every record with its cluster: records that share any non-rejected identifier, directly or through a
-- chain, are one person (int_identity_labels: the graph's connected components, labelled by their
-- smallest record_key). A record without links is its own cluster. The anchor is the cluster's oldest
-- record (smallest record_rank).
with records as (
    select
        record_id,
        record_key,
        record_rank
    from {{ ref('int_identity_records_unioned') }}
),

labelled as (
    select
        r.record_id,
        r.record_rank,
        coalesce(l.label, r.record_key) as component_key
    from records as r
    left join {{ ref('int_identity_labels') }} as l on r.record_key = l.node
),

anchors as (
    select
        component_key,
        min(record_rank) as anchor_rank
    from labelled
    group by component_key
)

select
    l.record_id,
    l.record_rank,
    l.component_key,
    a.anchor_rank,
    anchor.record_id as anchor_record_id
from labelled as l
inner join anchors as a on l.component_key = a.component_key
inner join records as anchor on a.anchor_rank = anchor.record_rank
