-- Fails (returns rows) when one more propagation step would still change a record's label: then
-- var('identity_propagation_steps') is too small for this graph's longest chain; raise it. Also fails when
-- the labelled nodes are not exactly the graph's nodes (an incremental build that kept a stale node or
-- missed a new one), or when a label is larger than its node or is no node labelled by itself.
-- One more step (macros/identity_propagation_step.sql) gives each record the smallest label of its
-- identifiers' records, then the label of its label: it changes nothing exactly when every identifier's
-- records carry one label and every label is a root (the last part below). So the step is checked as
-- "one label per identifier": one join and group by instead of the step's three (at 1M people 13.5 s -> ~5 s
-- of a day's build).
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

-- identifiers whose records carry different labels: the step would give them all the smallest
identifiers_with_labels_apart as (
    select
        e.ident,
        min(l.label) as smallest_label
    from edges as e
    inner join final_labels as l on e.node = l.node
    group by e.ident
    having min(l.label) != max(l.label)
)

select
    f.node,
    f.label as label_after_build,
    apart.smallest_label as label_after_one_more_step
from identifiers_with_labels_apart as apart
inner join edges as e on apart.ident = e.ident
inner join final_labels as f on e.node = f.node
where f.label != apart.smallest_label

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
