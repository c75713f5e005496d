{#
  The clusters' change list handed to int_customer_ids_assigned (docs/identity-incremental.md "Stable ids"):
  `int_identity_clusters_propagated__changed` (record_id) lists every record whose row in the clusters may
  differ from what the ids last read: each incremental clusters build appends, in its transaction, the
  touched records it deletes (vanished ones included) and the recomputed records whose anchor differs from
  their row's before the rewrite (new ones included). A row with a null record_id is the marker "the
  clusters were built in full" (any row may have changed); a missing list says the same. The ids read it
  (CR is the listed records whose anchor now differs from their current id's row) and empty it in their
  transaction (post-hook), so between two ids builds:
  (J) a record not listed has the same anchor in the clusters (or is absent from both) as in the ids' current
  rows.
  On Spark nothing is listed: the clusters are a plain table there and the ids select the whole state.
#}

{# The change list beside the clusters model (`clusters`: the clusters' relation, `this` when the clusters
   call it, a model may not ref itself). #}
{% macro identity_clusters_changed_relation(clusters=none) -%}
    {%- set clusters = clusters or ref('int_identity_clusters_propagated') -%}
    {{ return(clusters.incorporate(path={'identifier': clusters.identifier ~ '__changed'}, type='table')) }}
{%- endmacro %}

{# A relation to select `record_id` from: every record whose anchor may have changed since the ids last
   ran; none when the ids must diff every row (no list, or the full-build marker). #}
{% macro identity_clusters_changed() -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set listed = rapport.identity_clusters_changed_relation() -%}
    {%- if not rapport.table_exists_now(listed) -%}{{ return(none) }}{%- endif -%}
    {%- set full = run_query('select count(*) from ' ~ listed ~ ' where record_id is null').columns[0].values()[0] -%}
    {%- if full | int > 0 -%}{{ return(none) }}{%- endif -%}
    {{ return(listed) }}
{%- endmacro %}

{# Part of the clusters' pre-hook (in their transaction, before their delete): create the list if missing
   (with the marker: nothing says what changed before it existed); list the touched records the build
   deletes, or write the marker when the build selects everything. Statements end with ';'. #}
{% macro list_clusters_deleted(touched) -%}
    {%- set listed = rapport.identity_clusters_changed_relation(this) -%}
    {%- if not rapport.table_exists_now(listed) %}
        create table {{ listed }} (record_id {{ dbt.type_string() }});
        insert into {{ listed }} values (null);
    {%- endif %}
    {%- if touched %}
        insert into {{ listed }} select touched_key from {{ touched }};
    {%- else %}
        insert into {{ listed }} values (null);
    {%- endif %}
{%- endmacro %}

{# Incremental strategy of the clusters on DuckDB: delete+insert on record_id, first listing the recomputed
   records whose anchor differs from their row's before the rewrite (a record whose row the pre-hook deleted
   counts as new: listed again, harmless). Only when the build is by region: otherwise the pre-hook wrote
   the marker. #}
{% macro get_incremental_identity_clusters_sql(arg_dict) -%}
    {%- set target, source = arg_dict['target_relation'], arg_dict['temp_relation'] -%}
    {%- if rapport.identity_region_nodes() is not none %}
        insert into {{ rapport.identity_clusters_changed_relation(target) }}
        select s.record_id
        from {{ source }} as s
        left join {{ target }} as t on s.record_id = t.record_id
        where s.anchor_record_id is distinct from t.anchor_record_id;
    {%- endif %}
    {{ get_incremental_delete_insert_sql(arg_dict) }}
{%- endmacro %}
