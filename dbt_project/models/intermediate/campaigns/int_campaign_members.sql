{{ config(
    materialized=rapport.incremental_on_duckdb(),
    incremental_strategy='append',
    pre_hook="{{ rapport.campaign_members_delete_touched() }}",
    post_hook="{{ rapport.campaign_members_keep_state() }}"
) }}
-- One row per campaign audience member (distinct lower(trim(email)) per campaign and group), with the
-- stitched customer, the holdout outcome and the member's segment as of the day before the send.
--   converted: the customer has a valid order in [send_at, send_at + holdout_window_days). Every member
--              counts (intent to treat), delivered or not; a member no customer could be found for
--              never converts.
--   window_revenue_usd: net USD of those orders. Two members of one group who are the same person
--              share their orders: counts_revenue marks one member per (campaign, group, customer), the
--              first by recipient key, so a group's revenue sums each of its orders once.
--   pre_send_rfm_segment: from orders created before send_at only, recency from the day before
--              (int_segment_rfm's 'send:' scope); 'No Purchases' without such orders.
--   pre_orders, pre_revenue_usd: the customer's valid orders and their net USD in
--              [send_at - cuped_pre_period_days, send_at): the CUPED covariates, known before the send.
-- Incremental on DuckDB (macros/campaign_members_touched.sql, docs/marts-incremental.md): a day build
-- recomputes the members whose row can differ from the last build's only (its audience rows are filtered to
-- them; the rest of this SQL is the full build's); the pre-hook deletes their rows. A plain table on Spark.
{%- set touched = rapport.campaign_members_touched_list() %}
{%- set touched_campaigns = rapport.campaign_members_touched_campaigns_list() %}

with campaigns as (
    {{ campaign_members_campaigns_sql() }}
),

audience_rows_all as (
    select
        audience_member_id,
        campaign_id,
        email,
        lower(trim(email)) as recipient_key,
        lower(trim(audience_group)) as audience_group
    from {{ ref('stg_esp__audiences') }}
    where email is not null
),

-- by member (DuckDB): the touched campaigns' rows, and the touched members' by a join to their list (a
-- distinct list): an `or exists` over every row made DuckDB group all 3.97M rows by their key (issue 16)
audience_rows as (
    {%- if touched %}
        select
            audience_member_id,
            campaign_id,
            email,
            recipient_key,
            audience_group
        from audience_rows_all
        where campaign_id in (select t.campaign_id from {{ touched_campaigns }} as t)
        union all
        select
            a.audience_member_id,
            a.campaign_id,
            a.email,
            a.recipient_key,
            a.audience_group
        from audience_rows_all as a
        inner join {{ touched }} as t
            on
                a.campaign_id = t.campaign_id
                and a.audience_group = t.audience_group
                and a.recipient_key = t.recipient_key
        where a.campaign_id not in (select tc.campaign_id from {{ touched_campaigns }} as tc)
    {%- else %}
        select
            audience_member_id,
            campaign_id,
            email,
            recipient_key,
            audience_group
        from audience_rows_all
    {%- endif %}
),

-- the intermediate form of marts.customer_identities (this layer builds before the marts); an audience
-- row's identity source_id is its audience_member_id (campaign_id || ':' || email)
audience_identities as (
    select
        source_id,
        customer_id
    from {{ ref('int_customer_ids_assigned') }}
    where source = 'esp.audience_member' and is_current
),

-- How (cost): a member is a group of audience rows by (campaign, recipient key, group), but nearly every
-- group is one row. Rows are counted by a hash of that key (one integer) instead of grouped by three
-- strings; a row whose hash no other row has is alone in its group (equal keys hash equally), so it is
-- its member as it is. Only rows sharing a hash (the same recipient listed twice, or a hash collision)
-- are grouped exactly. The same holds for customers shared by members below.
identified_rows as (
    select
        audience_rows.campaign_id,
        audience_rows.recipient_key,
        audience_rows.audience_group,
        audience_rows.email,
        audience_identities.customer_id,
        hash(audience_rows.campaign_id, audience_rows.recipient_key, audience_rows.audience_group)
            as member_hash
    from audience_rows
    left join audience_identities on audience_rows.audience_member_id = audience_identities.source_id
),

repeated_member_hashes as (
    select member_hash
    from identified_rows
    group by 1
    having count(*) > 1
),

identified_rows_flagged as (
    select
        identified_rows.*,
        repeated_member_hashes.member_hash is not null as is_repeated
    from identified_rows
    left join repeated_member_hashes on identified_rows.member_hash = repeated_member_hashes.member_hash
),

members as (
    select
        campaign_id,
        recipient_key,
        audience_group,
        email,
        customer_id
    from identified_rows_flagged
    where not is_repeated
    union all
    select
        campaign_id,
        recipient_key,
        audience_group,
        min(email) as email,
        min(customer_id) as customer_id
    from identified_rows_flagged
    where is_repeated
    group by 1, 2, 3
),

campaign_members as (
    select
        members.*,
        campaigns.send_at
    from members
    inner join campaigns on members.campaign_id = campaigns.campaign_id
),

-- people with several members in one campaign and group (a few thousand of millions): their first member
-- by recipient key carries their revenue. Any other member is its person's only one there (or has no
-- customer) and carries it: a lookup of these few rows is cheaper than numbering every member by person.
-- Candidates first by a hash of (campaign, group, customer), as for the members above.
repeated_customer_hashes as (
    select hash(campaign_id, audience_group, customer_id) as customer_hash
    from campaign_members
    where customer_id is not null
    group by 1
    having count(*) > 1
),

shared_customers as (
    select
        campaign_members.campaign_id,
        campaign_members.audience_group,
        campaign_members.customer_id,
        min(campaign_members.recipient_key) as revenue_recipient_key
    from campaign_members
    inner join repeated_customer_hashes
        on
            hash(campaign_members.campaign_id, campaign_members.audience_group, campaign_members.customer_id)
            = repeated_customer_hashes.customer_hash
    where campaign_members.customer_id is not null
    group by 1, 2, 3
    having count(*) > 1
),

valid_orders as (
    {{ valid_customer_orders() }}
),

-- the customer's valid orders from the pre-period's start to the holdout window's end, split at send_at
member_orders as (
    select
        campaign_members.campaign_id,
        campaign_members.recipient_key,
        campaign_members.audience_group,
        count(case when valid_orders.created_at >= campaign_members.send_at then 1 end) as window_orders,
        sum(case when valid_orders.created_at >= campaign_members.send_at then valid_orders.net_revenue_usd end)
            as window_revenue_usd,
        count(case when valid_orders.created_at < campaign_members.send_at then 1 end) as pre_orders,
        sum(case when valid_orders.created_at < campaign_members.send_at then valid_orders.net_revenue_usd end)
            as pre_revenue_usd
    from campaign_members
    inner join valid_orders
        on
            campaign_members.customer_id = valid_orders.customer_id
            and {{ campaign_members_window('valid_orders.created_at', 'campaign_members.send_at') }}
    group by 1, 2, 3
),

pre_send_segments as (
    {{ campaign_members_send_segments_sql() }}
)

select
    campaign_members.campaign_id,
    campaign_members.recipient_key,
    campaign_members.email,
    campaign_members.audience_group,
    campaign_members.customer_id,
    campaign_members.send_at,
    coalesce(member_orders.window_orders, 0) > 0 as converted,
    coalesce(member_orders.window_orders, 0) as window_orders,
    coalesce(member_orders.window_revenue_usd, 0) as window_revenue_usd,
    coalesce(member_orders.pre_orders, 0) as pre_orders,
    coalesce(member_orders.pre_revenue_usd, 0) as pre_revenue_usd,
    coalesce(campaign_members.recipient_key = shared_customers.revenue_recipient_key, true) as counts_revenue,
    cast({{ dbt.dateadd('day', -1, 'campaign_members.send_at') }} as date) as segment_as_of_date,
    coalesce(pre_send_segments.rfm_segment, 'No Purchases') as pre_send_rfm_segment
from campaign_members
left join member_orders
    on
        campaign_members.campaign_id = member_orders.campaign_id
        and campaign_members.recipient_key = member_orders.recipient_key
        and campaign_members.audience_group = member_orders.audience_group
left join pre_send_segments
    on
        campaign_members.send_at = pre_send_segments.cutoff_at
        and campaign_members.customer_id = pre_send_segments.customer_id
left join shared_customers
    on
        campaign_members.campaign_id = shared_customers.campaign_id
        and campaign_members.audience_group = shared_customers.audience_group
        and campaign_members.customer_id = shared_customers.customer_id
