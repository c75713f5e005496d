{{
    config(
        materialized='incremental',
        incremental_strategy=rapport.incremental_replace_strategy(),
        unique_key=['record_id', 'customer_id'],
        partition_by=['is_current'],
        on_schema_change='append_new_columns',
        full_refresh=false,
        post_hook="{{ rapport.clear_change_list(rapport.identity_clusters_changed_relation()) }}"
    )
}}
-- Persisted record -> customer_id assignments: the state that keeps customer ids stable across runs.
-- One row per (record, customer id) pair ever assigned; is_current marks the pairs that hold now.
-- full_refresh=false: `dbt build --full-refresh` keeps this history (drop the table to reset ids).
--
-- What a build selects (docs/identity-incremental.md "Stable ids"):
-- * by region (DuckDB, incremental, not --full-refresh: macro ids_by_region): only the clusters whose id
--   can change are recomputed; the build writes their records' pairs and retires the earlier pairs of
--   those records (and of vanished records) that no longer hold; delete+insert on the unique_key leaves
--   every other row as it was, last_assigned_* included; the records whose anchor changed are read from the
--   clusters' change list (macros/identity_clusters_changed.sql, consumed by the post-hook), and earlier
--   pairs only for the recomputed clusters' records and the holders of their ids;
-- * otherwise the table's whole new state (every cluster, and every earlier pair, retired), so replacing
--   by unique_key (DuckDB) and overwriting the is_current partitions written (Spark) agree. (One case
--   differs: a run with no records at all would leave Spark's old is_current partition in place.)
-- last_assigned_at / last_assigned_run_id: the last build that computed the pair while it held.
--
-- Rules (docs/identity.md):
-- * a cluster whose records were assigned ids before keeps one of them: every previous id goes to the
--   cluster holding most of its records, and a cluster that wins several (a merge) keeps the id of the
--   oldest customer (earliest first_seen_at), the others are retired (marts.customer_id_history);
-- * a new cluster (or the smaller part of a split) gets 'c' + 16 hex of md5(anchor record id), the anchor
--   being its oldest record, so a rebuilt warehouse issues the same ids; salted with the run id in the
--   rare case that id was already issued.
-- A cluster is named by its anchor record; ties between clusters go to the older anchor, ordered as the
-- anchors are (first_seen_at, source_priority, source_id: int_identity_clusters_propagated).

{%- set assigned_at = iso_to_utc_timestamp("'" ~ run_started_at ~ "'") %}
{%- set by_region = is_incremental() and ids_by_region() %}
{#- the clusters' change list (macros/identity_clusters_changed.sql); none: diff every record (called
    unprefixed so that unit tests can override it) -#}
{%- set changed_list = identity_clusters_changed() if by_region else none %}

with
{%- if by_region %}
    -- CR: records whose cluster's anchor differs from their current pair's, new records and vanished ones,
    -- with their new anchor (null: vanished) and previous id (null: new). With the change list only the
    -- listed records can be in CR (every other record kept its anchor since the ids last ran: (J)).
    changed_records as (
        select
            coalesce(n.record_id, p.record_id) as record_id,
            n.anchor_record_id,
            p.customer_id
        {%- if changed_list %}
            from (select distinct l.record_id from {{ changed_list }} as l) as listed
            left join {{ ref('int_identity_clusters_propagated') }} as n on listed.record_id = n.record_id
            left join {{ this }} as p on listed.record_id = p.record_id and p.is_current
        {%- else %}
            from {{ ref('int_identity_clusters_propagated') }} as n
            full outer join (
                select t.*
                from {{ this }} as t
                where t.is_current
            ) as p on n.record_id = p.record_id
        {%- endif %}
        where n.anchor_record_id is distinct from p.anchor_record_id
    ),

    -- AA: the clusters whose id can change: those of CR's records and of every holder of their previous ids
    region_anchors as (
        select anchor_record_id
        from changed_records
        where anchor_record_id is not null
        union
        select n.anchor_record_id
        from {{ this }} as p
        inner join {{ ref('int_identity_clusters_propagated') }} as n on p.record_id = n.record_id
        where p.is_current and p.customer_id in (
            select cr.customer_id from changed_records as cr
            where cr.customer_id is not null
        )
    ),
{%- endif %}

-- the clusters recomputed (by region: AA's; else all)
clusters as (
    select
        c.record_id,
        c.anchor_record_id,
        r.source,
        r.source_id,
        r.first_seen_at
    from {{ ref('int_identity_clusters_propagated') }} as c
    inner join {{ ref('int_identity_records_unioned') }} as r on c.record_id = r.record_id
    {%- if by_region %}
        where c.anchor_record_id in (select ra.anchor_record_id from region_anchors as ra)
    {%- endif %}
),

-- the earlier pairs of the recomputed clusters' records (claims, ages and kept first_assigned_* read no
-- other record's)
previous as (
    {%- if is_incremental() %}
        select
            record_id,
            customer_id,
            anchor_record_id,
            first_assigned_at,
            first_assigned_run_id,
            is_current
        from {{ this }}
        {%- if by_region %}
            where record_id in (select c.record_id from clusters as c)
        {%- endif %}
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as record_id,
            cast(null as {{ dbt.type_string() }}) as customer_id,
            cast(null as {{ dbt.type_string() }}) as anchor_record_id,
            cast(null as timestamp) as first_assigned_at,
            cast(null as {{ dbt.type_string() }}) as first_assigned_run_id,
            cast(null as boolean) as is_current
        where false
    {%- endif %}
),

previous_current as (
    select
        record_id,
        customer_id,
        anchor_record_id
    from previous
    where is_current
),

-- each cluster's anchor with what orders anchors oldest first
anchors as (
    select
        r.record_id as anchor_record_id,
        r.first_seen_at as anchor_first_seen_at,
        r.source_priority as anchor_source_priority,
        r.source_id as anchor_source_id
    from {{ ref('int_identity_records_unioned') }} as r
    where r.record_id in (select c.anchor_record_id from clusters as c)
),

-- how many of each cluster's records held each previous id
claims as (
    select
        c.anchor_record_id,
        p.customer_id,
        count(*) as claimed_records,
        min(c.first_seen_at) as claimed_first_seen_at
    from clusters as c
    inner join previous_current as p on c.record_id = p.record_id
    group by c.anchor_record_id, p.customer_id
),

-- age of a previous id: its customer's earliest record
id_age as (
    select
        p.customer_id,
        min(c.first_seen_at) as customer_first_seen_at
    from previous_current as p
    inner join clusters as c on p.record_id = c.record_id
    group by p.customer_id
),

id_winners as (
    select
        c.customer_id,
        c.anchor_record_id,
        c.claimed_records
    from claims as c
    inner join anchors as a on c.anchor_record_id = a.anchor_record_id
    qualify row_number() over (
        partition by c.customer_id
        order by
            c.claimed_records desc, a.anchor_first_seen_at asc nulls last, a.anchor_source_priority asc,
            a.anchor_source_id asc
    ) = 1
),

kept_ids as (
    select
        w.anchor_record_id,
        w.customer_id
    from id_winners as w
    inner join id_age as a on w.customer_id = a.customer_id
    qualify row_number() over (
        partition by w.anchor_record_id
        order by a.customer_first_seen_at asc nulls last, w.claimed_records desc, w.customer_id asc
    ) = 1
),

-- the ids earlier builds issued (retired ones too) among those the recomputed clusters would take new: a
-- probe of the candidates, not a distinct over every id ever issued
issued_candidates as (
    {%- if is_incremental() %}
        select t.customer_id
        from {{ this }} as t
        where t.customer_id in (select 'c' || left(md5(a.anchor_record_id), 16) from anchors as a)
    {%- else %}
        select cast(null as {{ dbt.type_string() }}) as customer_id
        where false
    {%- endif %}
),

cluster_ids as (
    select
        a.anchor_record_id,
        coalesce(
            k.customer_id,
            case
                when 'c' || left(md5(a.anchor_record_id), 16) in (select i.customer_id from issued_candidates as i)
                    then 'c' || left(md5(a.anchor_record_id || '|' || '{{ var("run_id") }}'), 16)
                else 'c' || left(md5(a.anchor_record_id), 16)
            end
        ) as customer_id
    from anchors as a
    left join kept_ids as k on a.anchor_record_id = k.anchor_record_id
),

current_assignments as (
    select
        c.record_id,
        c.source,
        c.source_id,
        ci.customer_id,
        c.anchor_record_id
    from clusters as c
    inner join cluster_ids as ci on c.anchor_record_id = ci.anchor_record_id
)

select
    ca.record_id,
    ca.source,
    ca.source_id,
    ca.customer_id,
    ca.anchor_record_id,
    true as is_current,
    coalesce(p.first_assigned_at, {{ assigned_at }}) as first_assigned_at,
    coalesce(p.first_assigned_run_id, '{{ var("run_id") }}') as first_assigned_run_id,
    {{ assigned_at }} as last_assigned_at,
    '{{ var("run_id") }}' as last_assigned_run_id
from current_assignments as ca
left join previous as p on ca.record_id = p.record_id and ca.customer_id = p.customer_id

{#- with --empty the refs are empty, so this part would retire every assignment: skip it -#}
{% if is_incremental() and not flags.EMPTY %}
    union all

    -- earlier assignments that no longer hold (merge, split, record gone): by region, the current pairs of
    -- the recomputed and vanished records retired now; else also every pair retired before
    select
        t.record_id,
        t.source,
        t.source_id,
        t.customer_id,
        t.anchor_record_id,
        false as is_current,
        t.first_assigned_at,
        t.first_assigned_run_id,
        t.last_assigned_at,
        t.last_assigned_run_id
    from {{ this }} as t
    where
        not exists (
            select 1 from current_assignments as ca
            where ca.record_id = t.record_id and ca.customer_id = t.customer_id
        )
        {% if by_region %}
            and t.is_current
            and (
                t.record_id in (select c.record_id from clusters as c)
                or t.record_id in (
                    select cr.record_id from changed_records as cr
                    where cr.anchor_record_id is null
                )
            )
        {% endif %}
{% endif %}
