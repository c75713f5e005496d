-- Connected components of the identity graph: records that share any non-rejected identifier, directly
-- or through a chain, are one person. Computed by unrolled min-label propagation (macro
-- identity_propagation_step); tests/identity/assert_identity_propagation_converged fails when
-- var('identity_propagation_steps') was not enough. The anchor is the cluster's oldest record.
with edges as materialized (
    select
        node,
        ident
    from {{ ref('int_identity_edges_filtered') }}
),

labels_0 as (
    select distinct
        node,
        node as label
    from edges
),

{%- set steps = var('identity_propagation_steps') | int %}
{% for step in range(1, steps + 1) %}
{{ identity_propagation_step('labels_' ~ step, 'labels_' ~ (step - 1), 'edges') }},
{% endfor %}

final_labels as (
    select
        node,
        label
    from labels_{{ steps }}
)

select
    r.record_id,
    r.record_rank,
    coalesce(f.label, r.record_rank) as anchor_rank,
    anchor.record_id as anchor_record_id
from {{ ref('int_identity_records_unioned') }} as r
left join final_labels as f on r.record_rank = f.node
inner join {{ ref('int_identity_records_unioned') }} as anchor on coalesce(f.label, r.record_rank) = anchor.record_rank
