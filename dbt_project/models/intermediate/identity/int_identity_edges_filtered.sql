{{ config(
    materialized=rapport.incremental_on_duckdb(),
    unique_key=['identifier_type', 'identifier_value'],
    incremental_strategy='delete+insert',
    pre_hook=["{{ rapport.save_edges_before() }}", "{{ rapport.delete_touched_values() }}"],
    post_hook="{{ rapport.clear_change_list(rapport.identity_touched_values_relation(ref('int_identity_identifiers_unpivoted'))) }}"
) }}
-- The identity graph: record -> identifier, for identifier values that can link (carried by at least
-- two records and not rejected by the fan-out guard). Nodes are stable record keys (record_key); ident is
-- the value's stable key (stable_key of `type:value`: the same in every build, unlike a rank; a collision
-- fails the test assert_identity_edge_idents_unique), the compact join key of the propagation;
-- identifier_type and identifier_value name it across builds (what int_identity_labels diffs).
-- Incremental by value like int_identity_fanout_measured (macros/identity_touched.sql): a value's edges
-- depend only on the records that carry it and its fan-out, both recomputed for the touched values.
-- The post-hook empties the touched values' list (this is the last model to read it), in this model's
-- transaction: a build cut short before leaves the list for its retry; one cut short after has nothing left
-- to recompute (the fan-out and edges hold the touched values' new rows).
-- Before replacing them, the pre-hook keeps the touched values' rows as int_identity_labels last saw them
-- (macros/identity_edges_before.sql): the labels diff those against this table's rows for the same values.
{%- set touched = rapport.identity_touched_values() %}

with
{%- if touched %}
    -- read through rapport.identity_touched, which the linter does not expand
    touched_values as (  -- noqa: ST03
        select touched_key from {{ touched }}
    ),
{%- endif %}

linking_identifiers as (
    select
        identifier_type,
        identifier_value,
        {{ rapport.stable_key("identifier_type || ':' || identifier_value") }} as ident
    from {{ ref('int_identity_fanout_measured') }}
    where
        not is_rejected and records > 1
        and {{ rapport.identity_touched("identifier_type || ':' || identifier_value", touched, 'touched_values') }}
)

select distinct
    r.record_key as node,
    li.ident,
    li.identifier_type,
    li.identifier_value
from {{ ref('int_identity_identifiers_unpivoted') }} as i
inner join linking_identifiers as li
    on i.identifier_type = li.identifier_type and i.identifier_value = li.identifier_value
inner join {{ ref('int_identity_records_unioned') }} as r on i.record_id = r.record_id
