-- Every record with its cluster: records that share any non-rejected identifier, directly or through a
-- chain, are one person (int_identity_labels: the graph's connected components, labelled by their
-- smallest record_key). A record without links is its own cluster. The anchor is the cluster's oldest
-- record: first by first_seen_at, then source_priority, then source_id (a total order: one source per
-- priority), computed within the cluster so that no persisted table holds a rank that renumbers.
with records as (
    select
        record_id,
        record_key,
        first_seen_at,
        source_priority,
        source_id
    from {{ ref('int_identity_records_unioned') }}
),

labelled as (
    select
        r.record_id,
        r.first_seen_at,
        r.source_priority,
        r.source_id,
        coalesce(l.label, r.record_key) as component_key
    from records as r
    left join {{ ref('int_identity_labels') }} as l on r.record_key = l.node
)

select
    record_id,
    component_key,
    first_value(record_id) over (
        partition by component_key
        order by first_seen_at asc nulls last, source_priority asc, source_id asc
    ) as anchor_record_id
from labelled
