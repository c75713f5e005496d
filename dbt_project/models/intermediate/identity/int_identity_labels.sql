{{ config(materialized='label_propagation', max_steps=var('identity_propagation_steps')) }}
-- Connected components of the identity graph: one row per linked record (node = record_rank) with the
-- smallest record_rank of its component (label). Computed by min-label propagation with pointer jumping,
-- one step per statement until no label changes (materialization label_propagation); at most
-- var('identity_propagation_steps') steps, and tests/identity/assert_identity_propagation_converged fails
-- the build when that was not enough. The model's SQL is the graph: its edges.
select
    node,
    ident
from {{ ref('int_identity_edges_filtered') }}
