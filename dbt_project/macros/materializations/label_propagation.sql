{#
  Materialization `label_propagation`: the connected components of a bipartite graph, as (node, label) with
  label = the smallest node of the node's component. The model's SQL selects the edges (node, ident,
  identifier_type, identifier_value): ident is the identifier's compact key, type and value name it across
  builds.

  A loop outside SQL: one statement per propagation step (macro identity_propagation_step), each step's
  labels a table, until a step changes no label or config `max_steps` steps ran. One query unrolling the
  steps (CTEs `as materialized`) is DuckDB-only, and Spark re-plans every unrolled step until planning
  never ends. When max_steps is reached first, the table holds the labels so far; the singular test
  assert_identity_propagation_converged then fails the build.

  Incremental (docs/identity-incremental.md): config `edges_model` names the model the SQL reads the edges
  from; its pre-hook keeps the before-images of the values whose edges a build may change
  (`<edges_model>__before`, macros/identity_edges_before.sql) until the labels consume them. When the labels
  table and that list exist, the list holds no "build in full" marker and the build is no --full-refresh,
  only the region touched by the edges that changed since is relabelled: every node of an added or removed
  edge, every node that carried a changed identifier before, and every node of the old components of those
  nodes. The other components keep their rows, which are exactly what a full build gives them (labels are
  the smallest node, a function of the component's node set). The table's rows and the list change in one
  transaction (DuckDB): a build cut short leaves the old labels with the pending images, or the new ones with
  none. Where the edges model is a plain table (Spark: rapport.incremental_on_duckdb) there is no
  list, and every build labels in full and rewrites the table.

  The region relabelled (R, the nodes whose rows were deleted and inserted) is appended to `<model>__region`
  in the same transaction, for int_identity_clusters_propagated (macros/identity_region.sql); a full labelling
  writes a null node there instead (every component may have changed).
#}
{% materialization label_propagation, default %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set max_steps = config.get('max_steps', 8) | int -%}
    {%- set edges_model = config.get('edges_model') -%}

    {%- set edges = label_propagation_scratch('edges') -%}
    {%- set region_edges = label_propagation_scratch('region_edges') -%}
    {%- set region_nodes = label_propagation_scratch('region_nodes') -%}
    {%- set region_list = label_propagation_scratch('region') -%}
    {%- set delta = label_propagation_scratch('delta') -%}
    {%- set touched = label_propagation_scratch('touched') -%}
    {%- set affected = label_propagation_scratch('affected') -%}
    {%- set ns = namespace(current=label_propagation_scratch('labels_0'), steps=0, changed=none) -%}

    {{ run_hooks(pre_hooks) }}

    {%- set before = none -%}
    {%- set by_value = edges_model and rapport.incremental_on_duckdb() == 'incremental' -%}
    {%- if by_value -%}
        {%- set candidate = rapport.identity_edges_before_relation(ref(edges_model)) -%}
        {%- if rapport.table_exists_now(candidate) %}{% set before = candidate %}{% endif -%}
    {%- endif -%}
    {%- set incremental = before is not none and not should_full_refresh() and not flags.EMPTY
        and adapter.get_relation(this.database, this.schema, this.identifier) is not none
        and run_query('select count(*) from ' ~ before ~ ' where identifier_type is null').columns[0].values()[0] | int == 0 -%}

    {# scratch tables a build cut short left behind (and the kept edges of earlier versions): dbt's relation
       cache (filled when the invocation starts) knows them, so only those that exist cost a statement #}
    {%- set scratch_names = ['edges', 'edges_built', 'region_edges', 'region_nodes', 'delta', 'touched', 'affected',
        'next'] -%}
    {%- for step in range(0, max_steps + 1) %}{% do scratch_names.append('labels_' ~ step) %}{% endfor %}
    {%- for name in scratch_names %}
        {%- set scratch = label_propagation_scratch(name) -%}
        {%- if adapter.get_relation(scratch.database, scratch.schema, scratch.identifier) is not none %}
            {% do adapter.drop_relation(scratch) %}
        {%- endif %}
    {%- endfor %}

    {%- if incremental %}
        {%- set keys = 'node, identifier_type, identifier_value' -%}
        {%- set on_value = 'e.identifier_type = v.identifier_type and e.identifier_value = v.identifier_value' -%}
        {# only the listed values' edges can differ from what the labels last saw: diff them against their
           before-images (a null node: the value had no edge) #}
        {% do run_query(get_create_table_as_sql(False, delta,
            'with listed_values as (select distinct identifier_type, identifier_value from ' ~ before ~ '), '
            ~ 'edges_now as (select e.node, e.identifier_type, e.identifier_value from (\n' ~ sql ~ '\n) as e '
            ~ 'inner join listed_values as v on ' ~ on_value ~ '), '
            ~ 'edges_then as (select ' ~ keys ~ ' from ' ~ before ~ ' where node is not null) '
            ~ 'select ' ~ keys ~ ' from (select ' ~ keys ~ ' from edges_now except select ' ~ keys
            ~ ' from edges_then) as added union select ' ~ keys ~ ' from (select ' ~ keys
            ~ ' from edges_then except select ' ~ keys ~ ' from edges_now) as removed')) %}
        {# a changed identifier touches every node that carried it: its component may split or join #}
        {% do run_query(get_create_table_as_sql(False, touched,
            'select node from ' ~ delta ~ ' union select e.node from ' ~ before ~ ' as e inner join '
            ~ '(select distinct identifier_type, identifier_value from ' ~ delta ~ ') as v on ' ~ on_value
            ~ ' where e.node is not null')) %}
        {% do run_query(get_create_table_as_sql(False, affected,
            'select distinct t.label from ' ~ target_relation ~ ' as t inner join ' ~ touched
            ~ ' as u on t.node = u.node')) %}
        {% do run_query(get_create_table_as_sql(False, region_nodes,
            'select node from ' ~ touched ~ ' union select t.node from ' ~ target_relation ~ ' as t inner join '
            ~ affected ~ ' as a on t.label = a.label')) %}
        {% do run_query(get_create_table_as_sql(False, region_edges,
            'select e.node, e.ident from (\n' ~ sql ~ '\n) as e where e.node in (select node from ' ~ region_nodes
            ~ ')')) %}
        {%- set graph = region_edges -%}
    {%- else %}
        {% do run_query(get_create_table_as_sql(False, edges, 'select node, ident from (\n' ~ sql ~ '\n) as e')) %}
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
    {%- else %}
        {# a full build replaces the table: dropped outside the transaction (a build cut short after this
           leaves no labels table, and the next build labels in full) #}
        {% do adapter.drop_relation(target_relation) %}
    {%- endif %}
    {% do log(this.identifier ~ ': ' ~ ns.steps ~ ' propagation steps, '
        ~ ('converged' if ns.changed == 0 else 'not converged (max_steps ' ~ max_steps ~ ')')) %}

    {# the labels and the list of pending before-images change in one transaction ('main' begins it) #}
    {% call statement('main') -%}
        {%- if incremental %}
            delete from {{ target_relation }} where label in (select label from {{ affected }});
            insert into {{ target_relation }} select node, label from {{ ns.current }}
        {%- else %}
            {{ get_create_table_as_sql(False, target_relation, 'select node, label from ' ~ ns.current) }}
        {%- endif %}
    {%- endcall %}
    {%- if by_value %}
        {# the region goes to the clusters (macros/identity_region.sql): appended until they consume it; a
           null node says every component may have changed. Between the labels' write and the clear: the
           crash test (tests/dbt/test_identity_labels_pending.py) makes this append fail #}
        {% do run_query('create table if not exists ' ~ region_list ~ ' (node bigint)') %}
        {%- if incremental %}
            {% do run_query('insert into ' ~ region_list ~ ' select node from ' ~ region_nodes) %}
        {%- else %}
            {% do run_query('delete from ' ~ region_list) %}
            {% do run_query('insert into ' ~ region_list ~ ' values (null)') %}
        {%- endif %}
    {%- endif %}
    {%- if before is not none %}
        {% do run_query('delete from ' ~ before) %}
        {#- labels that did not converge (the convergence test fails the build) are no state to build on #}
        {%- if ns.changed != 0 %}
            {% do run_query('insert into ' ~ before ~ ' values (null, null, null, null)') %}
        {%- endif %}
    {%- endif %}
    {%- for scratch in [ns.current, edges, region_edges, region_nodes, delta, touched, affected] %}
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
