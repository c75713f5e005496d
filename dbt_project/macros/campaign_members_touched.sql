{#
  Incremental int_campaign_members (issue 16, docs/identity-day-costs.md section 7, docs/marts-incremental.md):
  on DuckDB a day build deletes the rows of every member whose row can differ from the last build's and
  inserts those members' rows, computed by the model's own SQL with its audience rows filtered to them. On
  Spark the model is a plain table.

  A member row (campaign c, group g, recipient k) reads c's audience rows for (g, k), their current customer
  ids, c's send_at, that customer's valid orders in c's windows, the customer's segment in c's send scope
  and which other members of (c, g) share the customer. The touched members, with the letters of the docs:
  (a) every member of a campaign whose send_at changed or appeared/vanished (kept copy of the campaigns) or
      with an audience row landed since the last build (`since`);
  (b) members with an audience record whose current pair the ids (re)wrote since the last build
      (`last_assigned_at` newer than the kept watermark, as for customers);
  (c) members of c whose customer (before or after) is that of a valid order inserted, deleted or changed
      (kept copy of the valid orders in the campaigns' windows) with its created_at in one of c's windows;
  (d) members of c whose customer's segment in c's send scope changed (kept copy of the send scopes'
      segments);
  (e) every member of a (c, g, customer) of a member touched above, before or after (counts_revenue): the
      pre-hook recomputes every member of c sharing such a customer, in any group (a few members more, one
      join of the table fewer).

  State beside the model, written by its post-hook in the model's transaction (a build that fails before the
  model commits leaves the previous state, which the table was built from):
  `int_campaign_members__seen_assignments` (watermark), `__seen_campaigns`, `__seen_orders`,
  `__seen_segments`. `__touched` and `__touched_campaigns` hold the touched members between the pre-hook and
  the insert (dropped after).
#}

{# true when the model builds by member: an incremental DuckDB build with `since` and the kept state. #}
{% macro campaign_members_by_member() -%}
    {{ return(adapter.dispatch('campaign_members_by_member', 'rapport')()) }}
{%- endmacro %}

{% macro default__campaign_members_by_member() -%}
    {#- a dbt unit test renders the model with no relation of its own (`this` is none): the full SQL -#}
    {%- if this is none or not (is_incremental() and rapport.increment_since()) -%}{{ return(false) }}{%- endif -%}
    {%- set state = rapport.campaign_members_state_relations() -%}
    {{ return(rapport.all_tables_exist_now([state.assignments, state.campaigns, state.orders, state.segments])) }}
{%- endmacro %}

{% macro spark__campaign_members_by_member() -%}
    {{ return(false) }}
{%- endmacro %}

{# The state tables and the touched lists, beside the model. #}
{% macro campaign_members_state_relations() -%}
    {%- set named = {} -%}
    {%- for kind, suffix in [('assignments', 'seen_assignments'), ('campaigns', 'seen_campaigns'),
                             ('orders', 'seen_orders'), ('segments', 'seen_segments'),
                             ('touched', 'touched'), ('touched_campaigns', 'touched_campaigns'),
                             ('changed_orders', 'changed_orders'), ('changed_segments', 'changed_segments')] -%}
        {%- do named.update({kind: this.incorporate(
            path={'identifier': this.identifier ~ '__' ~ suffix}, type='table')}) -%}
    {%- endfor -%}
    {{ return(named) }}
{%- endmacro %}

{# The touched lists (touched: campaign_id, audience_group, recipient_key; touched_campaigns: campaign_id),
   or none (the build computes every member). #}
{% macro campaign_members_touched_relations() -%}
    {{ return(rapport.campaign_members_state_relations() if rapport.campaign_members_by_member() else none) }}
{%- endmacro %}

{# Each list alone, for the model (sqlfluff renders a namespaced macro call as a name, not an object). #}
{% macro campaign_members_touched_list() -%}
    {%- set state = rapport.campaign_members_touched_relations() -%}
    {{ return(state.touched if state else none) }}
{%- endmacro %}

{% macro campaign_members_touched_campaigns_list() -%}
    {%- set state = rapport.campaign_members_touched_relations() -%}
    {{ return(state.touched_campaigns if state else none) }}
{%- endmacro %}

{# What the model's full build reads and the state keeps: the campaigns with a send, and the valid orders
   inside one of their windows ([send_at - pre-period, send_at + holdout window)). #}
{% macro campaign_members_campaigns_sql() -%}
    select campaign_id, send_at from {{ ref('int_campaigns') }} where send_at is not null
{%- endmacro %}

{% macro campaign_members_window(order_at, send_at) -%}
    {%- set holdout_days = var('holdout_window_days', 7) | int -%}
    {%- set pre_days = var('cuped_pre_period_days', 90) | int -%}
    {{ dbt.dateadd('day', -pre_days, send_at) }} <= {{ order_at }}
    and {{ order_at }} < {{ dbt.dateadd('day', holdout_days, send_at) }}
{%- endmacro %}

{% macro campaign_members_window_orders_sql() -%}
    select o.order_id, o.customer_id, o.created_at, o.net_revenue_usd
    from ({{ valid_customer_orders() }}) as o
    where exists (
        select 1 from ({{ rapport.campaign_members_campaigns_sql() }}) as c
        where {{ rapport.campaign_members_window('o.created_at', 'c.send_at') }}
    )
{%- endmacro %}

{% macro campaign_members_send_segments_sql() -%}
    select scopes.cutoff_at, rfm.customer_id, rfm.rfm_segment
    from {{ ref('int_segment_rfm') }} as rfm
    inner join {{ ref('int_segment_scopes') }} as scopes on rfm.scope_id = scopes.scope_id
    where scopes.scope_id <> 'as_of'
{%- endmacro %}

{# A query, one column campaign_id: the touched campaigns (a). #}
{% macro campaign_members_touched_campaigns_sql(state) -%}
    {%- set since = rapport.increment_since() -%}
    with campaigns_now as (
        {{ rapport.campaign_members_campaigns_sql() }}
    ),

    moved_campaigns as (
        (select campaign_id, send_at from campaigns_now
            except
            select campaign_id, send_at from {{ state.campaigns }})
        union all
        (select campaign_id, send_at from {{ state.campaigns }}
            except
            select campaign_id, send_at from campaigns_now)
    )

    -- (a) campaigns whose send changed, and campaigns with an audience row landed
    select campaign_id from moved_campaigns
    union
    select campaign_id from {{ ref('stg_esp__audiences') }} where _extracted_at > {{ since }}
{%- endmacro %}

{# Statements writing what changed since the kept copies, both ways (is_now: the row is today's, else the
   kept one's): read by the touched members (c), (d) and by the post-hook, which applies them to the copies
   instead of rewriting 2.4M segments and 0.9M orders at 1M people.
   How (cost): order_id, and (cutoff_at, customer_id), are keys of both sides (never null), so a row changed
   exactly when its key is on one side only or its other columns differ: one full join on the key, where
   `except` both ways built and probed two hash tables of every row (the segments' diff 0.15 -> 0.07 s CPU
   at 100k people, same rows). #}
{% macro campaign_members_changes_statements(state) -%}
    create or replace table {{ state.changed_orders }} as
    with window_orders_now as (
        {{ rapport.campaign_members_window_orders_sql() }}
    ),

    changed_orders as materialized (
        select
            fresh.order_id as fresh_order_id,
            fresh.customer_id as fresh_customer_id,
            fresh.created_at as fresh_created_at,
            fresh.net_revenue_usd as fresh_net_revenue_usd,
            kept.order_id as kept_order_id,
            kept.customer_id as kept_customer_id,
            kept.created_at as kept_created_at,
            kept.net_revenue_usd as kept_net_revenue_usd
        from window_orders_now as fresh
        full join {{ state.orders }} as kept on fresh.order_id = kept.order_id
        where
            fresh.order_id is null or kept.order_id is null
            or fresh.customer_id is distinct from kept.customer_id
            or fresh.created_at is distinct from kept.created_at
            or fresh.net_revenue_usd is distinct from kept.net_revenue_usd
    )

    select fresh_order_id as order_id, fresh_customer_id as customer_id, fresh_created_at as created_at,
        fresh_net_revenue_usd as net_revenue_usd, true as is_now
    from changed_orders where fresh_order_id is not null
    union all
    select kept_order_id, kept_customer_id, kept_created_at, kept_net_revenue_usd, false
    from changed_orders where kept_order_id is not null;

    create or replace table {{ state.changed_segments }} as
    with segments_now as (
        {{ rapport.campaign_members_send_segments_sql() }}
    ),

    changed_segments as materialized (
        select
            fresh.cutoff_at as fresh_cutoff_at,
            fresh.customer_id as fresh_customer_id,
            fresh.rfm_segment as fresh_rfm_segment,
            kept.cutoff_at as kept_cutoff_at,
            kept.customer_id as kept_customer_id,
            kept.rfm_segment as kept_rfm_segment
        from segments_now as fresh
        full join {{ state.segments }} as kept
            on fresh.cutoff_at = kept.cutoff_at and fresh.customer_id = kept.customer_id
        where
            fresh.customer_id is null or kept.customer_id is null
            or fresh.rfm_segment is distinct from kept.rfm_segment
    )

    select fresh_cutoff_at as cutoff_at, fresh_customer_id as customer_id, fresh_rfm_segment as rfm_segment,
        true as is_now
    from changed_segments where fresh_customer_id is not null
    union all
    select kept_cutoff_at, kept_customer_id, kept_rfm_segment, false
    from changed_segments where kept_customer_id is not null
{%- endmacro %}

{# A query, columns campaign_id, audience_group, recipient_key: the other touched members (b)-(e); it reads
   the touched campaigns and the changes, written before it runs. #}
{% macro campaign_members_touched_sql(state) -%}
    {#- the watermark as a literal: the ids' scan then skips the row groups no build wrote since -#}
    {%- set watermark = run_query('select cast(max(last_assigned_at) as ' ~ dbt.type_string() ~ ') from '
        ~ state.assignments).columns[0].values()[0] -%}
    with campaigns as (
        {{ rapport.campaign_members_campaigns_sql() }}
    ),

    -- read twice, by two joins: not copied (3.97M rows at 1M people)
    old_members as not materialized (
        select m.campaign_id, m.audience_group, m.recipient_key, m.customer_id
        from {{ this }} as m
        where m.campaign_id not in (select t.campaign_id from {{ state.touched_campaigns }} as t)
    ),

    -- (b) audience rows whose current customer id the ids (re)computed since the last build, with it (a few
    -- thousand rows, read three times: computed once)
    reassigned_members as materialized (
        select
            a.campaign_id,
            lower(trim(a.audience_group)) as audience_group,
            lower(trim(a.email)) as recipient_key,
            ids.customer_id
        from {{ ref('stg_esp__audiences') }} as a
        inner join {{ ref('int_customer_ids_assigned') }} as ids on a.audience_member_id = ids.source_id
        where
            ids.source = 'esp.audience_member' and ids.is_current and a.email is not null
            {%- if watermark is not none %}
                and ids.last_assigned_at > cast('{{ watermark }}' as timestamp)
            {%- endif %}
    ),

    -- (c) valid orders in a window inserted, deleted or changed since the last build, both versions
    changed_orders as (
        select customer_id, created_at from {{ state.changed_orders }}
    ),

    -- (d) send-scope segments that changed (or appeared, or vanished)
    changed_segments as (
        select cutoff_at, customer_id from {{ state.changed_segments }}
    ),

    touched_customers as (
        select c.campaign_id, o.customer_id
        from changed_orders as o
        inner join campaigns as c on {{ rapport.campaign_members_window('o.created_at', 'c.send_at') }}
        union
        select c.campaign_id, s.customer_id
        from changed_segments as s
        inner join campaigns as c on s.cutoff_at = c.send_at
    ),

    -- (e) before: the customer the last build gave a member of (b)
    reassigned_before as (
        select m.campaign_id, m.customer_id
        from old_members as m
        inner join reassigned_members as r
            on
                m.campaign_id = r.campaign_id
                and m.audience_group = r.audience_group
                and m.recipient_key = r.recipient_key
    ),

    -- (c), (d) and (e): every (campaign, customer) whose members are touched; (e) asks for the members of the
    -- touched members' (campaign, group, customer), a subset of these (a few more members recomputed, one
    -- join of the table fewer)
    every_touched_customer as (
        select campaign_id, customer_id from touched_customers
        union
        select campaign_id, customer_id from reassigned_members
        union
        select campaign_id, customer_id from reassigned_before
    )

    -- a member not in (b) has the customer the last build gave it: (c), (d) and (e) find it in the table
    select campaign_id, audience_group, recipient_key from reassigned_members
    where campaign_id not in (select t.campaign_id from {{ state.touched_campaigns }} as t)
    union
    select m.campaign_id, m.audience_group, m.recipient_key
    from old_members as m
    inner join every_touched_customer as t on m.campaign_id = t.campaign_id and m.customer_id = t.customer_id
{%- endmacro %}

{# Pre-hook: list the touched members and delete their rows; with no `since` (or no kept state) delete every
   row, as the build returns them all. #}
{% macro campaign_members_delete_touched() -%}
    {{ return(adapter.dispatch('campaign_members_delete_touched', 'rapport')()) }}
{%- endmacro %}

{% macro default__campaign_members_delete_touched() -%}
    {#- with --empty the build returns nothing: delete nothing either -#}
    {%- if is_incremental() and not flags.EMPTY -%}
        {%- set state = rapport.campaign_members_touched_relations() -%}
        {%- if state -%}
            {#- the changes first: the touched members read them (the touched campaigns do not) -#}
            {%- for statement in rapport.campaign_members_changes_statements(state).split(';') -%}
                {%- do run_query(statement) -%}
            {%- endfor -%}
            {{ rapport.list_touched_keys([
                    (state.touched_campaigns, ['campaign_id'], rapport.campaign_members_touched_campaigns_sql(state)),
                    (state.touched, ['campaign_id', 'audience_group', 'recipient_key'],
                        rapport.campaign_members_touched_sql(state))
                ], 'int_campaign_members: incremental, recomputing {} campaigns and {} other members',
                delete_from=this) }}
        {%- else -%}
            delete from {{ this }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro spark__campaign_members_delete_touched() -%}
{%- endmacro %}

{# Post-hook, in the model's transaction: keep what this build read, drop the touched lists. #}
{% macro campaign_members_keep_state() -%}
    {{ return(adapter.dispatch('campaign_members_keep_state', 'rapport')()) }}
{%- endmacro %}

{% macro default__campaign_members_keep_state() -%}
    {%- if execute and not flags.EMPTY -%}
        {%- set state = rapport.campaign_members_state_relations() -%}
        create or replace table {{ state.assignments }} as
        select max(last_assigned_at) as last_assigned_at from {{ ref('int_customer_ids_assigned') }};
        create or replace table {{ state.campaigns }} as {{ rapport.campaign_members_campaigns_sql() }};
        {%- if rapport.all_tables_exist_now([state.changed_orders, state.changed_segments]) %}
        -- a build by member: the copies become today's by their changes (order_id, and (cutoff_at, customer_id),
        -- are keys of both sides)
        delete from {{ state.orders }}
        where order_id in (select c.order_id from {{ state.changed_orders }} as c where not c.is_now);
        insert into {{ state.orders }}
        select order_id, customer_id, created_at, net_revenue_usd from {{ state.changed_orders }} where is_now;
        delete from {{ state.segments }} as s
        where exists (
            select 1 from {{ state.changed_segments }} as c
            where not c.is_now and c.cutoff_at = s.cutoff_at and c.customer_id = s.customer_id
        );
        insert into {{ state.segments }}
        select cutoff_at, customer_id, rfm_segment from {{ state.changed_segments }} where is_now;
        {%- else %}
        create or replace table {{ state.orders }} as {{ rapport.campaign_members_window_orders_sql() }};
        create or replace table {{ state.segments }} as {{ rapport.campaign_members_send_segments_sql() }};
        {%- endif %}
        drop table if exists {{ state.changed_orders }};
        drop table if exists {{ state.changed_segments }};
        drop table if exists {{ state.touched }};
        drop table if exists {{ state.touched_campaigns }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__campaign_members_keep_state() -%}
{%- endmacro %}
