{#
  The edges' before-images (docs/identity-incremental.md "What the labelling recomputes"): what
  int_identity_labels needs to relabel only what changed without keeping a copy of every edge.

  `int_identity_edges_filtered__before` (identifier_type, identifier_value, node, ident) lists every value
  whose edges may have changed since the labels were last written, with the edges it had then: one row per
  edge, or one row with a null node when it had none. The edges' pre-hook adds the touched values not listed
  yet, with their rows as they are before this build replaces them (the first image since the labels last
  consumed the list is the one the labels saw: a value touched again by a later edges build keeps it). The
  labels read it and empty it in the transaction that writes them.

  A row with a null identifier_type is the marker "the labels must build in full": written when the edges
  build in full (every value changed), when the list did not exist while the edges did (nothing says what
  changed since the labels), and by labels that did not converge.

  On Spark nothing: the edges are a plain table rebuilt whole there, and the labels build in full.
#}

{# The relation beside `edges` listing the before-images. #}
{% macro identity_edges_before_relation(edges) -%}
    {{ return(edges.incorporate(path={'identifier': edges.identifier ~ '__before'}, type='table')) }}
{%- endmacro %}

{# Pre-hook of int_identity_edges_filtered, before delete_touched_values (in the edges' transaction). #}
{% macro save_edges_before() -%}
    {{ return(adapter.dispatch('save_edges_before', 'rapport')()) }}
{%- endmacro %}

{% macro default__save_edges_before() -%}
    {%- if execute and not flags.EMPTY -%}
        {%- set before = rapport.identity_edges_before_relation(this) -%}
        {%- set listed_before = rapport.table_exists_now(before) -%}
        {%- set by_value = is_incremental() and listed_before and rapport.identity_touched_values() -%}
        create table if not exists {{ before }} (
            identifier_type {{ dbt.type_string() }},
            identifier_value {{ dbt.type_string() }},
            node bigint,
            ident bigint
        );
        {%- if by_value %}
            {%- set listed = rapport.identity_touched_values_relation(ref('int_identity_identifiers_unpivoted')) %}
            insert into {{ before }}
            with newly_touched as (
                select distinct t.identifier_type, t.identifier_value
                from {{ listed }} as t
                where t.since = {{ rapport.increment_since() }}
                    and not exists (
                        select 1 from {{ before }} as b
                        where b.identifier_type = t.identifier_type and b.identifier_value = t.identifier_value
                    )
            )
            select v.identifier_type, v.identifier_value, e.node, e.ident
            from newly_touched as v
            left join {{ this }} as e
                on v.identifier_type = e.identifier_type and v.identifier_value = e.identifier_value;
        {%- else %}
            -- the edges build in full (or nothing says what changed since the labels): so do the labels
            delete from {{ before }};
            insert into {{ before }} values (null, null, null, null);
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{% macro spark__save_edges_before() -%}
{%- endmacro %}
