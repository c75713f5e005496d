-- Every customer_id ever issued and the id that carries that person now. A retired id (merged into
-- another customer) maps to the current id of most of the records it last held; current ids map to
-- themselves. BI tools join historical ids through current_customer_id.
-- last_assigned_at: this build's time for a current id (assigned in every build, though a build computes
-- only the clusters whose id can change); for a retired id, the last build that computed it while current.
{%- set built_at = iso_to_utc_timestamp("'" ~ run_started_at ~ "'") %}

with pairs as (
    select * from {{ ref('int_customer_ids_assigned') }}
),

current_pairs as (
    select
        record_id,
        customer_id,
        first_assigned_at
    from pairs
    where is_current
),

ids as (
    select
        customer_id,
        min(first_assigned_at) as first_assigned_at,
        max(last_assigned_at) as last_assigned_at,
        bool_or(is_current) as is_current
    from pairs
    group by customer_id
),

-- where the records a retired id last held went: the pairs of its last computation (a build computes all
-- the pairs of an id together, and an id whose records change is computed, so records that left it
-- earlier have older pairs), and the first build that gave them their current ids after it
retired_moves as (
    select
        p.customer_id,
        c.customer_id as current_customer_id,
        count(*) as records,
        min(c.first_assigned_at) filter (where c.first_assigned_at > i.last_assigned_at) as retired_at
    from pairs as p
    inner join ids as i
        on p.customer_id = i.customer_id and p.last_assigned_at = i.last_assigned_at and not i.is_current
    inner join current_pairs as c on p.record_id = c.record_id
    group by p.customer_id, c.customer_id
),

-- (a window over an aggregate in the same query block is DuckDB-only: ranked in its own CTE)
retired_targets as (
    select *
    from retired_moves
    qualify row_number() over (partition by customer_id order by records desc, current_customer_id asc) = 1
)

select
    i.customer_id,
    case when i.is_current then i.customer_id else t.current_customer_id end as current_customer_id,
    not i.is_current as is_retired,
    i.first_assigned_at,
    case when i.is_current then {{ built_at }} else i.last_assigned_at end as last_assigned_at,
    case when not i.is_current then t.retired_at end as retired_at
from ids as i
left join retired_targets as t on i.customer_id = t.customer_id
