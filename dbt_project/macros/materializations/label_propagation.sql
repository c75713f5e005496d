{#
  Materialization `label_propagation`: the connected components of a bipartite graph, as (node, label) with
  label = the smallest node of the node's component. The model's SQL selects the edges (node, ident,
  identifier_type, identifier_value): ident is the identifier's compact key within this build, type and
  value name it across builds.

  A loop outside SQL: one statement per propagation step (macro identity_propagation_step), each step's
  labels a table, until a step changes no label or config `max_steps` steps ran. One query unrolling the
  steps (CTEs `as materialized`) is DuckDB-only, and Spark re-plans every unrolled step until planning
  never ends. When max_steps is reached first, the table holds the labels so far; the singular test
  assert_identity_propagation_converged then fails the build.

  Incremental (docs/identity-incremental.md): the edges a build labelled are kept beside the table
  (`<model>__edges_built`, the model's SQL's rows). When both exist and the build is no --full-refresh, only the region touched by
  the edges that changed since is relabelled: every node of an added or removed edge, every node that
  carried a changed identifier before, and every node of the old components of those nodes. The other
  components keep their rows, which are exactly what a full build gives them (labels are the smallest node,
  a function of the component's node set). The kept edges are dropped before the table is replaced and
  written after it, so a build cut short in between leaves no edges and the next build is a full one.
#}
{% materialization label_propagation, default %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set max_steps = config.get('max_steps', 8) | int -%}

    {%- set edges = label_propagation_scratch('edges') -%}
    {%- set built = label_propagation_scratch('edges_built') -%}
    {%- set region_edges = label_propagation_scratch('region_edges') -%}
    {%- set delta = label_propagation_scratch('delta') -%}
    {%- set touched = label_propagation_scratch('touched') -%}
    {%- set affected = label_propagation_scratch('affected') -%}
    {%- set next_table = label_propagation_scratch('next') -%}
    {%- set ns = namespace(current=label_propagation_scratch('labels_0'), steps=0, changed=none) -%}

    {%- set incremental = not should_full_refresh() and not flags.EMPTY
        and adapter.get_relation(this.database, this.schema, this.identifier) is not none
        and adapter.get_relation(built.database, built.schema, built.identifier) is not none -%}

    {{ run_hooks(pre_hooks) }}

    {# scratch tables a build cut short left behind: dbt's relation cache (filled when the invocation starts)
       knows them, so only those that exist cost a statement #}
    {%- set scratch_names = ['edges', 'region_edges', 'delta', 'touched', 'affected', 'next'] -%}
    {%- for step in range(0, max_steps + 1) %}{% do scratch_names.append('labels_' ~ step) %}{% endfor %}
    {%- for name in scratch_names %}
        {%- set scratch = label_propagation_scratch(name) -%}
        {%- if adapter.get_relation(scratch.database, scratch.schema, scratch.identifier) is not none %}
            {% do adapter.drop_relation(scratch) %}
        {%- endif %}
    {%- endfor %}
    {% do run_query(get_create_table_as_sql(False, edges, sql)) %}

    {%- if incremental %}
        {%- set keys = 'node, identifier_type, identifier_value' -%}
        {% do run_query(get_create_table_as_sql(False, delta,
            'select ' ~ keys ~ ' from (select ' ~ keys ~ ' from ' ~ edges ~ ' except select ' ~ keys ~ ' from '
            ~ built ~ ') as added union select ' ~ keys ~ ' from (select ' ~ keys ~ ' from ' ~ built
            ~ ' except select ' ~ keys ~ ' from ' ~ edges ~ ') as removed')) %}
        {# a changed identifier touches every node that carried it: its component may split or join #}
        {% do run_query(get_create_table_as_sql(False, touched,
            'select node from ' ~ delta ~ ' union select b.node from ' ~ built ~ ' as b inner join '
            ~ '(select distinct identifier_type, identifier_value from ' ~ delta ~ ') as v '
            ~ 'on b.identifier_type = v.identifier_type and b.identifier_value = v.identifier_value')) %}
        {% do run_query(get_create_table_as_sql(False, affected,
            'select distinct t.label from ' ~ target_relation ~ ' as t inner join ' ~ touched
            ~ ' as u on t.node = u.node')) %}
        {% do run_query(get_create_table_as_sql(False, region_edges,
            'select e.node, e.ident from ' ~ edges ~ ' as e where e.node in (select node from ' ~ touched
            ~ ' union select t.node from ' ~ target_relation ~ ' as t inner join ' ~ affected
            ~ ' as a on t.label = a.label)')) %}
        {%- set graph = region_edges -%}
    {%- else %}
        {%- set graph = edges -%}
    {%- endif %}

    {% do run_query(get_create_table_as_sql(False, ns.current,
        'select distinct node, node as label from ' ~ graph)) %}

    {%- for step in range(1, max_steps + 1) %}
        {%- if ns.changed == 0 %}{% break %}{% endif %}
        {%- set next_labels = label_propagation_scratch('labels_' ~ step) -%}
        {% do run_query(get_create_table_as_sql(False, next_labels,
            'with ' ~ identity_propagation_step('stepped', ns.current, graph) ~ ' select node, label from stepped')) %}
        {%- set changed = run_query(
            'select count(*) from ' ~ next_labels ~ ' as n inner join ' ~ ns.current
            ~ ' as o on n.node = o.node where n.label <> o.label').columns[0].values()[0] -%}
        {% do adapter.drop_relation(ns.current) %}
        {%- set ns.current = next_labels -%}
        {%- set ns.steps = step -%}
        {%- set ns.changed = changed | int -%}
    {%- endfor %}

    {%- if incremental %}
        {%- set relabelled = run_query('select count(*) from ' ~ ns.current).columns[0].values()[0] -%}
        {% do log(this.identifier ~ ': incremental, relabelled ' ~ relabelled ~ ' nodes of the components touched by '
            ~ run_query('select count(*) from ' ~ delta).columns[0].values()[0] ~ ' changed edges') %}
        {% do run_query(get_create_table_as_sql(False, next_table,
            'select t.node, t.label from ' ~ target_relation ~ ' as t where not exists (select 1 from '
            ~ affected ~ ' as a where a.label = t.label) union all select node, label from ' ~ ns.current)) %}
        {%- set final_sql = 'select node, label from ' ~ next_table -%}
    {%- else %}
        {%- set final_sql = 'select node, label from ' ~ ns.current -%}
    {%- endif %}
    {% do log(this.identifier ~ ': ' ~ ns.steps ~ ' propagation steps, '
        ~ ('converged' if ns.changed == 0 else 'not converged (max_steps ' ~ max_steps ~ ')')) %}

    {# the kept edges go first: a build cut short before they are written again leaves none (next: full);
       this build's edges become them by a rename, not a copy #}
    {% do adapter.drop_relation(built) %}
    {% do adapter.drop_relation(target_relation) %}
    {% call statement('main') -%}
        {{ get_create_table_as_sql(False, target_relation, final_sql) }}
    {%- endcall %}
    {#- labels that did not converge (the convergence test fails the build) are no state to build on #}
    {%- if ns.changed == 0 %}
        {% do adapter.rename_relation(edges, built) %}
    {%- endif %}
    {%- for scratch in [ns.current, edges, region_edges, delta, touched, affected, next_table] %}
        {% do adapter.drop_relation(scratch) %}
    {%- endfor %}

    {{ run_hooks(post_hooks) }}
    {{ adapter.commit() }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{# A scratch table of the label_propagation model being built: `<model>__<suffix>` in its schema. #}
{% macro label_propagation_scratch(suffix) -%}
    {{ return(this.incorporate(path={'identifier': this.identifier ~ '__' ~ suffix}, type='table')) }}
{%- endmacro %}
