{#
  Incremental marts.customers (issue 16, docs/marts-incremental.md): on DuckDB a build deletes the rows of
  every customer whose row can differ from the last build's (touched), and of every customer id no longer
  current, then inserts the touched customers' recomputed rows. On Spark the model is a plain table.

  What customers last read is kept beside int_customer_ids_assigned (intermediate, not published), written
  by the model's post-hook in its own transaction, so a build that fails or is killed before customers
  commits leaves the previous state, and the next build compares with what the table was built from:
  - `customers__seen_assignments`: the latest last_assigned_at of the ids table (a watermark: every pair an
    ids build wrote after it is newer);
  - `customers__seen_rejected`: the identifier values the fan-out rejected.
  `customers__touched` holds the touched customer ids between the pre-hook and the insert, and
  `customers__touched_engagement` the customers whose engagement alone can have changed ((f) only) and
  `customers__engagement_rows` their rows with the engagement recomputed, written back by the pre-hook;
  `customers__engagement` the engagement of every touched customer (these three temporary tables, all
  dropped after): issue 16, at 1M people ~60% of a day's touched customers are (f) only, and each was
  recomputed from all of its records before.
#}

{# true when customers builds by customer: an incremental DuckDB build with `since` and the kept state. #}
{% macro customers_by_customer() -%}
    {{ return(adapter.dispatch('customers_by_customer', 'rapport')()) }}
{%- endmacro %}

{% macro default__customers_by_customer() -%}
    {%- if not (is_incremental() and rapport.increment_since()) -%}{{ return(false) }}{%- endif -%}
    {%- set state = rapport.customers_state_relations() -%}
    {{ return(rapport.all_tables_exist_now([state.assignments, state.rejected])) }}
{%- endmacro %}

{% macro spark__customers_by_customer() -%}
    {{ return(false) }}
{%- endmacro %}

{# The state tables (beside int_customer_ids_assigned) and the touched list. #}
{% macro customers_state_relations() -%}
    {%- set ids = ref('int_customer_ids_assigned') -%}
    {%- set named = {} -%}
    {%- for kind, suffix in [('assignments', 'seen_assignments'), ('rejected', 'seen_rejected'),
                             ('touched', 'touched')] -%}
        {%- do named.update({kind: ids.incorporate(path={'identifier': 'customers__' ~ suffix}, type='table')}) -%}
    {%- endfor -%}
    {#- scratch tables of one build, temporary (the hooks and the model run on one connection): written to
        the database file, the engagement rows cost a second of checkpoint at 1M people -#}
    {%- for kind in ['touched_engagement', 'engagement', 'engagement_rows'] -%}
        {%- do named.update({kind: api.Relation.create(database='temp', schema='main',
            identifier='customers__' ~ kind, type='table')}) -%}
    {%- endfor -%}
    {{ return(named) }}
{%- endmacro %}

{# The relation listing this build's touched customer ids (one column customer_id), or none (full build). #}
{% macro customers_touched_relation() -%}
    {{ return(rapport.customers_state_relations().touched if rapport.customers_by_customer() else none) }}
{%- endmacro %}

{# A query, one column customer_id: every current customer whose row can differ from the last build's in
   more than its engagement columns, (a)-(e); the engagement alone is (f), customers_engagement_touched_sql().
   The argument is in docs/marts-incremental.md; the letters are its mechanisms. #}
{% macro customers_touched_sql() -%}
    {%- set since = rapport.increment_since() -%}
    {%- set state = rapport.customers_state_relations() -%}
    {%- set raw_tickets = source('helpdesk', 'helpdesk_tickets') -%}
    {#- the watermark as a literal: (a)'s scan then skips, by their zone maps, the row groups of the ids
        table no build wrote since (a build's pairs are inserted together) -#}
    {%- set watermark = run_query('select cast(max(last_assigned_at) as ' ~ dbt.type_string() ~ ') from '
        ~ state.assignments).columns[0].values()[0] -%}
    -- not materialized: (a) and (b) each scan the ids table ((b) through the touched records' join filter,
    -- reading few rows); materialising every current pair first (5.8M at 1M people) cost twice as much
    -- (issue 16)
    with current_ids as not materialized (
        select record_id, customer_id, last_assigned_at
        from {{ ref('int_customer_ids_assigned') }}
        where is_current
    ),

    -- values whose is_rejected differs from what the last build read
    rejected_now as (
        select identifier_type, identifier_value
        from {{ ref('int_identity_fanout_measured') }}
        where is_rejected
    ),

    flipped as (
        (select identifier_type, identifier_value from rejected_now
            except
            select identifier_type, identifier_value from {{ state.rejected }})
        union all
        (select identifier_type, identifier_value from {{ state.rejected }}
            except
            select identifier_type, identifier_value from rejected_now)
    ),

    touched_records as (
        -- (b) records whose row may have changed (a landed order touches its customer's record or is one)
        select touched_key as record_id from {{ rapport.identity_touched_records() }}
        union
        -- (c) carriers of a value whose rejection flipped: records whose normalised email or phone it is
        -- (customers' *_is_rejected; the email and phone identifier rows int_email_customers reads are
        -- these values, int_identity_identifiers_unpivoted)
        select record_id from {{ ref('int_identity_records_unioned') }}
        where email_normalized in (select identifier_value from flipped where identifier_type = 'email')
        union
        select record_id from {{ ref('int_identity_records_unioned') }}
        where phone_normalized in (select identifier_value from flipped where identifier_type = 'phone')
        union
        -- (e) the requester, in any version, of a ticket landed
        select {{ rapport.identity_record_id('helpdesk.user', 'requester_id') }}
        from {{ raw_tickets }}
        where requester_id is not null
            and id in (select landed.id from {{ raw_tickets }} as landed where landed._extracted_at > {{ since }})
    )

    -- (a) customers an ids build wrote pairs of since the last build: gained, lost or new records
    select customer_id
    from current_ids
    {%- if watermark is not none %}
        where last_assigned_at > cast('{{ watermark }}' as timestamp)
    {%- endif %}
    union
    select c.customer_id
    from current_ids as c
    where c.record_id in (select t.record_id from touched_records as t)
    union
    -- (d) the customers of orders an FX rate landed may reprice: same currency, on or after its date
    select o.customer_id
    from {{ ref('int_orders_enriched') }} as o
    inner join (
        select currency, min(rate_date) as from_date
        from {{ ref('stg_shop__fx_rates') }}
        where _extracted_at > {{ since }}
        group by currency
    ) as fx on o.currency = fx.currency and cast(o.created_at as date) >= fx.from_date
    where o.customer_id is not null
{%- endmacro %}

{# A query, one column customer_id: (f) the customer of the email of an event landed, whose engagement
   columns can differ from the last build's (its other columns only if it is in (a)-(e) too). #}
{% macro customers_engagement_touched_sql() -%}
    {%- set since = rapport.increment_since() -%}
    select ec.customer_id
    from {{ ref('int_email_customers') }} as ec
    where ec.email_normalized in (
        select e.email_normalized from {{ ref('stg_esp__events') }} as e
        where e._extracted_at > {{ since }}
    )
{%- endmacro %}

{# The engagement (macros/customer_engagement.sql) of every touched customer, (a)-(f): the model's rows read
   it, and so do those of the customers touched by (f) only; one pass over the events for both. #}
{% macro customers_engagement_sql(state) -%}
    {{ rapport.customer_engagement('(select customer_id from ' ~ state.touched ~ ' union all select customer_id from '
        ~ state.touched_engagement ~ ')') }}
{%- endmacro %}

{# The engagement CTE of the model: the pre-hook's table when it builds by customer, else computed. #}
{% macro customers_engagement_relation() -%}
    {{ return(rapport.customers_state_relations().engagement if rapport.customers_by_customer() else none) }}
{%- endmacro %}

{# The rows of the customers touched by (f) only (`state.touched_engagement`), their engagement columns
   recomputed (as the model's select writes them: a customer without events has 0 and null). #}
{% macro customers_engagement_rows_sql(state) -%}
    select
        c.* replace (
            coalesce(en.emails_delivered, 0) as emails_delivered,
            coalesce(en.unique_human_opens, 0) as unique_human_opens,
            coalesce(en.unique_clicks, 0) as unique_clicks,
            en.last_engaged_at as last_engaged_at
        )
    from {{ this }} as c
    inner join {{ state.touched_engagement }} as t on c.customer_id = t.customer_id
    left join {{ state.engagement }} as en on c.customer_id = en.customer_id
{%- endmacro %}

{# Pre-hook of customers: list the touched customers and delete their rows and those of every customer id
   no longer current, then write the engagement columns of the customers touched by (f) only; with no `since`
   (or no kept state) delete every row, as the build returns them all. #}
{% macro customers_delete_touched() -%}
    {{ return(adapter.dispatch('customers_delete_touched', 'rapport')()) }}
{%- endmacro %}

{% macro default__customers_delete_touched() -%}
    {#- with --empty the build returns nothing: delete nothing either -#}
    {%- if is_incremental() and not flags.EMPTY -%}
        {%- set touched = rapport.customers_touched_relation() -%}
        {%- if touched -%}
            {%- set state = rapport.customers_state_relations() -%}
            {#- an id of the table no longer current had a current pair when the table was written, and the
                ids never delete a pair (they retire it: docs/identity-incremental.md; `rapport forget` and a
                full build make this build a full one), so it holds a retired pair now: the candidates are the
                ids of retired pairs, and of those the ones without a current pair go. Checking the few
                candidates against the current pairs, not every row of the table against all of them, spares a
                hash table of every current id (1M ids of 5.8M pairs at 1M people; issue 16) -#}
            {%- set no_longer_current -%}
                customer_id in (
                    select r.customer_id from {{ ref('int_customer_ids_assigned') }} as r
                    where not r.is_current and r.customer_id is not null
                    except
                    select a.customer_id from {{ ref('int_customer_ids_assigned') }} as a
                    where a.is_current and a.customer_id in (
                        select x.customer_id from {{ ref('int_customer_ids_assigned') }} as x where not x.is_current
                    )
                )
            {%- endset -%}
            {#- the second list, (f) less those recomputed whole, is a temp table (state.touched_engagement) -#}
            {%- set engagement_only -%}
                select e.customer_id from ({{ rapport.customers_engagement_touched_sql() }}
                ) as e
                where e.customer_id not in (select t.customer_id from {{ touched }} as t)
            {%- endset -%}
            {%- set delete_touched = rapport.list_touched_keys(
                [(touched, ['customer_id'], rapport.customers_touched_sql()),
                 (state.touched_engagement, ['customer_id'], engagement_only)],
                'customers: incremental, recomputing {} customers and the engagement of {} more',
                delete_from=this, also_delete=no_longer_current) -%}
            {#- their rows as they are, with the engagement columns as the model's select writes them (a customer
                without events: 0 and null); deleted and inserted again below: an update in place of ~90k rows
                cost 5 s at 1M people (its commit alone 2.6 s), rewriting them ~0.3 s -#}
            {%- do run_query('create or replace temp table ' ~ state.engagement ~ ' as '
                ~ rapport.customers_engagement_sql(state)) -%}
            {%- do run_query('create or replace temp table ' ~ state.engagement_rows ~ ' as '
                ~ rapport.customers_engagement_rows_sql(state)) -%}
            {{ delete_touched }};
            insert into {{ this }} select * from {{ state.engagement_rows }}
        {%- else -%}
            delete from {{ this }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro spark__customers_delete_touched() -%}
{%- endmacro %}

{# Post-hook of customers, in its transaction: keep what this build read, drop the touched list. #}
{% macro customers_keep_state() -%}
    {{ return(adapter.dispatch('customers_keep_state', 'rapport')()) }}
{%- endmacro %}

{% macro default__customers_keep_state() -%}
    {%- if execute and not flags.EMPTY -%}
        {%- set state = rapport.customers_state_relations() -%}
        create or replace table {{ state.assignments }} as
        select max(last_assigned_at) as last_assigned_at from {{ ref('int_customer_ids_assigned') }};
        create or replace table {{ state.rejected }} as
        select identifier_type, identifier_value from {{ ref('int_identity_fanout_measured') }} where is_rejected;
        drop table if exists {{ state.touched }};
        drop table if exists {{ state.touched_engagement }};
        drop table if exists {{ state.engagement }};
        drop table if exists {{ state.engagement_rows }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__customers_keep_state() -%}
{%- endmacro %}
