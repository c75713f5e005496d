{{ config(
    materialized=rapport.incremental_on_duckdb(),
    unique_key='record_id',
    incremental_strategy='identity_clusters',
    pre_hook="{{ rapport.delete_clusters_recomputed() }}",
    post_hook="{{ rapport.clear_change_list(rapport.identity_region_relation()) }}"
) }}
-- Every record with its cluster: records that share any non-rejected identifier, directly or through a
-- chain, are one person (int_identity_labels: the graph's connected components, labelled by their
-- smallest record_key). A record without links is its own cluster. The anchor is the cluster's oldest
-- record: first by first_seen_at, then source_priority, then source_id (a total order: one source per
-- priority), computed within the cluster so that no persisted table holds a rank that renumbers.
-- Incremental by region (DuckDB; docs/identity-incremental.md "Clusters by region"): a build recomputes the
-- records of the region the labels relabelled since (whole components), the touched records (new, changed
-- or vanished: a first_seen_at may move an anchor without any edge changing) and every record of the touched
-- records' components; a record's anchor depends on nothing else. The pre-hook deletes the touched records'
-- rows (vanished ones included). On Spark a table, rebuilt whole.
-- Change list for int_customer_ids_assigned (macros/identity_clusters_changed.sql): the pre-hook lists the
-- touched records it deletes (or the full-build marker), the strategy (delete+insert on record_id) the
-- recomputed records whose anchor changed; the ids consume the list.
-- depends_on: {{ ref('stg_shop__customers') }} {{ ref('stg_shop__orders') }} {{ ref('stg_helpdesk__users') }}
-- depends_on: {{ ref('stg_esp__contacts') }} {{ ref('stg_esp__audiences') }}
-- depends_on: {{ source('shop', 'shop_orders') }} {{ source('esp', 'esp_campaigns') }}
{%- set region = rapport.identity_region_nodes() if is_incremental() else none %}
{%- set touched = rapport.identity_touched_records() if region else none %}

with
{%- if region %}
    -- read through rapport.identity_touched and the labels' region, which the linter does not expand
    touched_records as (  -- noqa: ST03
        select touched_key from {{ touched }}
    ),

    touched_components as (
        select l.label
        from {{ ref('int_identity_labels') }} as l
        inner join {{ ref('int_identity_records_unioned') }} as r on l.node = r.record_key
        where r.record_id in (select t.touched_key from touched_records as t)
    ),

    recomputed_nodes as (
        select node from {{ region }}
        union
        select l.node
        from {{ ref('int_identity_labels') }} as l
        where l.label in (select c.label from touched_components as c)
    ),
{%- endif %}

records as (
    select
        record_id,
        record_key,
        first_seen_at,
        source_priority,
        source_id
    from {{ ref('int_identity_records_unioned') }}
    {%- if region %}
        where
            record_id in (select t.touched_key from touched_records as t)
            or record_key in (select n.node from recomputed_nodes as n)
    {%- endif %}
),

labelled as (
    select
        r.record_id,
        r.first_seen_at,
        r.source_priority,
        r.source_id,
        coalesce(l.label, r.record_key) as component_key
    from records as r
    left join {{ ref('int_identity_labels') }} as l on r.record_key = l.node
)

select
    record_id,
    component_key,
    first_value(record_id) over (
        partition by component_key
        order by first_seen_at asc nulls last, source_priority asc, source_id asc
    ) as anchor_record_id
from labelled
