-- Fails (returns rows) when one more propagation step would still change a record's label: then
-- var('identity_propagation_steps') is too small for this graph's longest chain; raise it. Also fails when
-- the labelled nodes are not exactly the graph's nodes (an incremental build that kept a stale node or
-- missed a new one), or when a label is larger than its node or is no node labelled by itself.
with edges as (
    select
        node,
        ident
    from {{ ref('int_identity_edges_filtered') }}
),

final_labels as (
    select
        node,
        label
    from {{ ref('int_identity_labels') }}
),

{{ identity_propagation_step('one_more', 'final_labels', 'edges') }}

select
    f.node,
    f.label as label_after_build,
    o.label as label_after_one_more_step
from final_labels as f
inner join one_more as o on f.node = o.node
where f.label != o.label

union all

select
    coalesce(f.node, e.node) as node,
    f.label as label_after_build,
    null as label_after_one_more_step
from final_labels as f
full outer join (select distinct node from edges) as e on f.node = e.node
where f.node is null or e.node is null

union all

select
    f.node,
    f.label as label_after_build,
    null as label_after_one_more_step
from final_labels as f
left join final_labels as root on f.label = root.node and root.label = root.node
where f.label > f.node or root.node is null
