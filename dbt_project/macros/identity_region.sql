{#
  The labels' region handed to int_identity_clusters_propagated (docs/identity-incremental.md "Clusters by
  region"): `int_identity_labels__region` (node) lists the nodes every incremental labelling since the
  clusters last ran relabelled (R: whole old components and the nodes of changed edges), appended in the
  labels' transaction; a row with a null node is the marker "the labels were built in full" (every component
  may have changed). The clusters read it and empty it in their transaction. On Spark nothing is listed:
  the clusters are a plain table there.
#}

{# The region list beside the labels model. #}
{% macro identity_region_relation() -%}
    {%- set labels = ref('int_identity_labels') -%}
    {{ return(labels.incorporate(path={'identifier': labels.identifier ~ '__region'}, type='table')) }}
{%- endmacro %}

{# A relation to select `node` from: the region relabelled since the clusters last ran; none when the
   calling model must build in full (no `since`, --full-refresh, no list, the full-labelling marker). #}
{% macro identity_region_nodes() -%}
    {%- if not rapport.increment_since() -%}{{ return(none) }}{%- endif -%}
    {%- set region = rapport.identity_region_relation() -%}
    {%- if not rapport.table_exists_now(region) -%}{{ return(none) }}{%- endif -%}
    {%- set full = run_query('select count(*) from ' ~ region ~ ' where node is null').columns[0].values()[0] -%}
    {%- if full | int > 0 -%}{{ return(none) }}{%- endif -%}
    {{ return(region) }}
{%- endmacro %}

{# Pre-hook of the clusters (in their transaction): delete the rows of every touched record (vanished ones
   included: dbt's delete+insert deletes only the keys it inserts), or every row when the build selects
   everything; list what it deletes for the ids first (macros/identity_clusters_changed.sql: the touched
   records, or the full-build marker). The touched records are computed once, into a temporary table. #}
{% macro delete_clusters_recomputed() -%}
    {{ return(adapter.dispatch('delete_clusters_recomputed', 'rapport')()) }}
{%- endmacro %}

{% macro default__delete_clusters_recomputed() -%}
    {%- if execute and not flags.EMPTY -%}
        {%- set touched = rapport.identity_touched_records() if is_incremental() and rapport.identity_region_nodes()
            else none -%}
        {%- if touched %}
            create or replace temporary table clusters_touched_now as select touched_key from {{ touched }};
        {%- endif %}
        {{ rapport.list_clusters_deleted('clusters_touched_now' if touched else none) }}
        {%- if is_incremental() %}
            delete from {{ this }}
            {%- if touched %} where {{ rapport.in_touched('record_id', 'select touched_key from clusters_touched_now') }}{% endif %};
        {%- endif %}
        {%- if touched %}
            drop table clusters_touched_now;
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{% macro spark__delete_clusters_recomputed() -%}
{%- endmacro %}
