{{ config(
    materialized='label_propagation',
    max_steps=var('identity_propagation_steps'),
    edges_model='int_identity_edges_filtered'
) }}
-- Connected components of the identity graph: one row per linked record (node = record_key) with the
-- smallest record_key of its component (label). Computed by min-label propagation with pointer jumping,
-- one step per statement until no label changes (materialization label_propagation); at most
-- var('identity_propagation_steps') steps, and tests/identity/assert_identity_propagation_converged fails
-- the build when that was not enough. The model's SQL is the graph: its edges, with the identifier each
-- names. An incremental build diffs the edges of the values changed since it last ran against their
-- before-images, which int_identity_edges_filtered keeps for it (edges_model), and relabels only the
-- components they touch (docs/identity-incremental.md).
select
    node,
    ident,
    identifier_type,
    identifier_value
from {{ ref('int_identity_edges_filtered') }}
