{#
  Materialization `label_propagation`: the connected components of a bipartite graph, as (node, label) with
  label = the smallest node of the node's component. The model's SQL selects the edges (node, ident).

  A loop outside SQL: one statement per propagation step (macro identity_propagation_step), each step's
  labels a table, until a step changes no label or config `max_steps` steps ran. One query unrolling the
  steps (CTEs `as materialized`) is DuckDB-only, and Spark re-plans every unrolled step until planning
  never ends. When max_steps is reached first, the table holds the labels so far; the singular test
  assert_identity_propagation_converged then fails the build.
#}
{% materialization label_propagation, default %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set max_steps = config.get('max_steps', 8) | int -%}

    {%- set edges = label_propagation_scratch('edges') -%}
    {%- set ns = namespace(current=label_propagation_scratch('labels_0'), steps=0, changed=none) -%}

    {{ run_hooks(pre_hooks) }}

    {%- for step in range(0, max_steps + 1) %}
        {% do adapter.drop_relation(label_propagation_scratch('labels_' ~ step)) %}
    {%- endfor %}
    {% do adapter.drop_relation(edges) %}
    {% do run_query(get_create_table_as_sql(False, edges, sql)) %}
    {% do run_query(get_create_table_as_sql(False, ns.current,
        'select distinct node, node as label from ' ~ edges)) %}

    {%- for step in range(1, max_steps + 1) %}
        {%- if ns.changed == 0 %}{% break %}{% endif %}
        {%- set next_labels = label_propagation_scratch('labels_' ~ step) -%}
        {% do run_query(get_create_table_as_sql(False, next_labels,
            'with ' ~ identity_propagation_step('stepped', ns.current, edges) ~ ' select node, label from stepped')) %}
        {%- set changed = run_query(
            'select count(*) from ' ~ next_labels ~ ' as n inner join ' ~ ns.current
            ~ ' as o on n.node = o.node where n.label <> o.label').columns[0].values()[0] -%}
        {% do adapter.drop_relation(ns.current) %}
        {%- set ns.current = next_labels -%}
        {%- set ns.steps = step -%}
        {%- set ns.changed = changed | int -%}
    {%- endfor %}
    {% do log(this.identifier ~ ': ' ~ ns.steps ~ ' propagation steps, '
        ~ ('converged' if ns.changed == 0 else 'not converged (max_steps ' ~ max_steps ~ ')')) %}

    {% do adapter.drop_relation(target_relation) %}
    {% call statement('main') -%}
        {{ get_create_table_as_sql(False, target_relation, 'select node, label from ' ~ ns.current) }}
    {%- endcall %}
    {% do adapter.drop_relation(ns.current) %}
    {% do adapter.drop_relation(edges) %}

    {{ run_hooks(post_hooks) }}
    {{ adapter.commit() }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{# A scratch table of the label_propagation model being built: `<model>__<suffix>` in its schema. #}
{% macro label_propagation_scratch(suffix) -%}
    {{ return(this.incorporate(path={'identifier': this.identifier ~ '__' ~ suffix}, type='table')) }}
{%- endmacro %}
