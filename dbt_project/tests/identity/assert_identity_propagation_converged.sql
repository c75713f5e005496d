-- Fails (returns rows) when one more propagation step would still change a record's cluster: then
-- var('identity_propagation_steps') is too small for this graph's longest chain; raise it.
with edges as (
    select
        node,
        ident
    from {{ ref('int_identity_edges_filtered') }}
),

final_labels as (
    select
        e.node,
        min(c.anchor_rank) as label
    from edges as e
    inner join {{ ref('int_identity_clusters_propagated') }} as c on e.node = c.record_rank
    group by e.node
),

{{ identity_propagation_step('one_more', 'final_labels', 'edges') }}

select
    f.node,
    f.label as label_after_build,
    o.label as label_after_one_more_step
from final_labels as f
inner join one_more as o on f.node = o.node
where f.label != o.label
