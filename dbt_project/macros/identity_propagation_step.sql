{#
  One step of min-label propagation over the bipartite record-identifier graph, with pointer jumping,
  emitted as two CTEs ending in `name` (node, label). `labels` is a relation (node, label) where each
  label is a node of the same component (initially the node itself); `edges` is (node, ident).
  Each identifier takes the smallest label of its records, each record the smallest label of its
  identifiers; then a record adopts its label's own new label (pointer jumping), which shortens long
  chains to a logarithmic number of steps. Labels only decrease, and stop changing once every component
  carries its smallest node: the connected components.
  Used by the label_propagation materialization (int_identity_labels, one step per statement until no label
  changes); the singular test assert_identity_propagation_converged checks the same fixed point more cheaply
  (one label per identifier, every label a root).
#}
{% macro identity_propagation_step(name, labels, edges) -%}
    {{ name }}__ident as (
        select
            e.ident,
            min(l.label) as label
        from {{ edges }} as e
        inner join {{ labels }} as l on e.node = l.node
        group by e.ident
    ),

    {{ name }}__stepped as (
        select
            l.node,
            least(l.label, coalesce(min(i.label), l.label)) as label
        from {{ labels }} as l
        left join {{ edges }} as e on l.node = e.node
        left join {{ name }}__ident as i on e.ident = i.ident
        group by l.node, l.label
    ),

    {{ name }} as (
        select
            s.node,
            least(s.label, j.label) as label
        from {{ name }}__stepped as s
        inner join {{ name }}__stepped as j on s.label = j.node
    )
{%- endmacro %}
