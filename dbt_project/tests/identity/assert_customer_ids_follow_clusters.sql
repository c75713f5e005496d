-- The invariant an incremental int_customer_ids_assigned relies on (docs/identity-incremental.md "Stable
-- ids"): every record of int_identity_clusters_propagated has one current id, recorded with its cluster's
-- anchor; no current id is recorded with two anchors; no anchor has two current ids. So every current id is
-- held by exactly the records of one cluster. If it fails, the next incremental build could keep a wrong
-- id: after finding the cause, `rapport run --full-refresh` computes every cluster's id again (keeping the
-- history).
-- On a day build the last two parts check only the ids and anchors of current pairs written since the last
-- passing build (docs/quality.md "dbt tests on a day build"): a group that newly holds two anchors or two ids
-- gained a current pair since, and every current pair a build writes carries its start in last_assigned_at.
-- The first part stays whole: retiring a record's pair leaves no such mark.
{%- set written = rapport.test_scope_where(
    written_at_column='last_assigned_at',
    model='(select * from ' ~ ref('int_customer_ids_assigned') ~ ' where is_current)'
) %}
with current_ids as (
    select
        record_id,
        customer_id,
        anchor_record_id,
        last_assigned_at
    from {{ ref('int_customer_ids_assigned') }}
    where is_current
),
{%- if written %}

    -- the current pairs written since the last passing build (and the passing build's own)
    written_since as (
        select
            scoped.customer_id,
            scoped.anchor_record_id
        from current_ids as scoped
        -- (sqlfluff's stand-in macros return text, not the scope's mapping)
        where {{ written['where'] if written is mapping else 'true' }}
    ),
{%- endif %}

records_off_their_cluster as (
    select
        coalesce(c.record_id, i.record_id) as subject,
        'record whose current id is missing, extra or not recorded with the anchor of its cluster' as problem
    from {{ ref('int_identity_clusters_propagated') }} as c
    full outer join current_ids as i on c.record_id = i.record_id
    where c.anchor_record_id is distinct from i.anchor_record_id
),

{%- if written %}

    ids_on_several_anchors as (
        select
            customer_id as subject,
            'current id held by records of several clusters' as problem
        from current_ids as i
        -- null-safe, as the groups are
        where
            exists (
                select 1 from written_since as w
                where w.customer_id is not distinct from i.customer_id
            )
        group by customer_id
        having count(distinct anchor_record_id) > 1
    ),

    anchors_with_several_ids as (
        select
            anchor_record_id as subject,
            'cluster holding several current ids' as problem
        from current_ids as i
        where
            exists (
                select 1 from written_since as w
                where w.anchor_record_id is not distinct from i.anchor_record_id
            )
        group by anchor_record_id
        having count(distinct customer_id) > 1
    )
{%- else %}

    -- every row: the distinct (id, anchor) pairs once (~1M of 5.8M rows at 1M people), then per id the
    -- anchors and per anchor the ids among them; count() of the non-null values of distinct pairs is the
    -- count(distinct) of each group, at about half the CPU of two distinct aggregates over every row
    id_anchor_pairs as (
        select distinct
            customer_id,
            anchor_record_id
        from current_ids
    ),

    ids_on_several_anchors as (
        select
            customer_id as subject,
            'current id held by records of several clusters' as problem
        from id_anchor_pairs
        group by customer_id
        having count(anchor_record_id) > 1
    ),

    anchors_with_several_ids as (
        select
            anchor_record_id as subject,
            'cluster holding several current ids' as problem
        from id_anchor_pairs
        group by anchor_record_id
        having count(customer_id) > 1
    )
{%- endif %}

select * from records_off_their_cluster
union all
select * from ids_on_several_anchors
union all
select * from anchors_with_several_ids
