{#
  Incremental int_orders_enriched (issue 16, docs/marts-incremental.md "int_orders_enriched"): on DuckDB a day
  build recomputes only the orders whose row can differ from the last build's (touched), with the model's own
  SQL and its orders filtered to them; delete+insert on order_id replaces their rows. On Spark the model is a
  plain table.

  An order's row reads its own stg_shop__orders row, the current pair of its record in
  int_customer_ids_assigned (orders.guest_order:<order_id> for a guest order, orders.customer:<customer_id>
  otherwise) and the rate of its currency in force on its created_at date. The touched orders:
  (a) orders whose staging row was written since the last build (a version landed: `_extracted_at > since`);
  (b) orders whose record has a current pair (re)computed since the last build (`last_assigned_at` newer than
      the kept watermark: an ids build writes every current pair of each cluster it recomputes, so a record
      that moved customer in a merge or split, or a guest order matched to a customer, has one), or whose
      record holds no current pair any more (its pairs retired and none written: kept its old time), and
      whose row in the table holds another customer id (the pair's customer is all the row reads of it);
  (c) every order of a currency, created on or after the earliest rate date whose rate differs from the kept
      copy of the rates (a rate landed late, corrected or gone: the rate in force changes from that day on).
  Orders never leave stg_shop__orders in an incremental build: raw rows leave only by `rapport forget` (or a
  raw-check rollback), and either makes the next build a full one (rapport.transform.increments).

  State beside the model, written by its post-hook in the model's transaction (a build that fails before the
  model commits leaves the previous state, which the table was built from), by full builds too (so a first
  day creates no relation): `int_orders_enriched__seen_assignments` (the ids' latest last_assigned_at),
  `__seen_fx` (the rates read). `__touched` holds the touched order ids between the pre-hook and the insert.
#}

{# true when the model builds by order: an incremental DuckDB build with `since` and the kept state. #}
{% macro orders_by_order() -%}
    {{ return(adapter.dispatch('orders_by_order', 'rapport')()) }}
{%- endmacro %}

{% macro default__orders_by_order() -%}
    {#- a dbt unit test renders the model with no relation of its own (`this` is none): the full SQL -#}
    {%- if this is none or not (is_incremental() and rapport.increment_since()) -%}{{ return(false) }}{%- endif -%}
    {{ return(rapport.orders_full_reason() is none) }}
{%- endmacro %}

{% macro spark__orders_by_order() -%}
    {{ return(false) }}
{%- endmacro %}

{# Why an incremental build with `since` must still compute every order (missing or empty state), or none. #}
{% macro orders_full_reason() -%}
    {%- set state = rapport.orders_state_relations() -%}
    {%- set kept = [state.assignments, state.fx] -%}
    {%- set exist = rapport.tables_exist_now(kept) -%}
    {%- for relation in kept -%}
        {%- if not exist[loop.index0] -%}{{ return('no kept state ' ~ relation.identifier) }}{%- endif -%}
    {%- endfor -%}
    {%- if rapport.orders_watermark(state) is none -%}
        {{ return('no ids watermark kept') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{# The state tables and the touched list, beside the model. #}
{% macro orders_state_relations() -%}
    {%- set named = {} -%}
    {%- for kind, suffix in [('assignments', 'seen_assignments'), ('fx', 'seen_fx'), ('touched', 'touched')] -%}
        {%- do named.update({kind: this.incorporate(
            path={'identifier': this.identifier ~ '__' ~ suffix}, type='table')}) -%}
    {%- endfor -%}
    {{ return(named) }}
{%- endmacro %}

{# The touched list (one column order_id), or none (the build computes every order). #}
{% macro orders_touched_list() -%}
    {{ return(rapport.orders_state_relations().touched if rapport.orders_by_order() else none) }}
{%- endmacro %}

{# The kept watermark as text, or none. #}
{% macro orders_watermark(state) -%}
    {{ return(run_query('select cast(max(last_assigned_at) as ' ~ dbt.type_string() ~ ') from '
        ~ state.assignments).columns[0].values()[0]) }}
{%- endmacro %}

{# The rates the model reads (what the state keeps). #}
{% macro orders_fx_sql() -%}
    select rate_date, currency, usd_per_unit
    from {{ ref('stg_shop__fx_rates') }}
    where usd_per_unit is not null
{%- endmacro %}

{# The record an order's customer comes from, as the model joins it: (source, source_id) expressions. #}
{% macro order_record_source(alias) -%}
    case when {{ alias }}.is_guest then 'orders.guest_order' else 'orders.customer' end
{%- endmacro %}

{% macro order_record_source_id(alias) -%}
    cast(case when {{ alias }}.is_guest then {{ alias }}.order_id else {{ alias }}.customer_id end
        as {{ dbt.type_string() }})
{%- endmacro %}

{# A query, one column order_id: every order whose row can differ from the last build's (letters above). #}
{% macro orders_touched_sql(state) -%}
    {%- set since = rapport.increment_since() -%}
    {#- the watermark as a literal: (b)'s scan skips, by their zone maps, the row groups of the ids table no
        build wrote since (as customers' touched list does) -#}
    {%- set watermark = rapport.orders_watermark(state) -%}
    with orders as not materialized (
        select order_id, customer_id, is_guest, currency, created_at, _extracted_at
        from {{ ref('stg_shop__orders') }}
    ),

    order_pairs as not materialized (
        select record_id, source, source_id, customer_id, is_current, last_assigned_at
        from {{ ref('int_customer_ids_assigned') }}
        where source in ('orders.customer', 'orders.guest_order')
    ),

    -- (b) order records with a current pair written since the last build (with its customer), or with no
    -- current pair left (customer null)
    records_reassigned as (
        select source, source_id, customer_id
        from order_pairs
        where is_current and last_assigned_at > cast('{{ watermark }}' as timestamp)
        union all
        select distinct r.source, r.source_id, cast(null as {{ dbt.type_string() }}) as customer_id
        from order_pairs as r
        where not r.is_current
            and not exists (select 1 from order_pairs as c where c.is_current and c.record_id = r.record_id)
    ),

    fx_now as (
        {{ rapport.orders_fx_sql() }}
    ),

    -- (c) rates that differ from the ones the last build read, both ways
    fx_changed as (
        (select rate_date, currency, usd_per_unit from fx_now
            except
            select rate_date, currency, usd_per_unit from {{ state.fx }})
        union all
        (select rate_date, currency, usd_per_unit from {{ state.fx }}
            except
            select rate_date, currency, usd_per_unit from fx_now)
    ),

    fx_changed_from as (
        select currency, min(rate_date) as from_date
        from fx_changed
        group by currency
    )

    -- (a) a version landed
    select order_id
    from orders
    where _extracted_at > {{ since }}
    union
    -- (b) of those, the orders whose row holds another customer (an ids build rewrites every pair of a cluster
    -- it recomputes, most with the customer they had)
    select o.order_id
    from orders as o
    inner join records_reassigned as r
        on r.source = {{ rapport.order_record_source('o') }} and r.source_id = {{ rapport.order_record_source_id('o') }}
    left join {{ this }} as t on o.order_id = t.order_id
    where t.order_id is null or t.customer_id is distinct from r.customer_id
    union
    select o.order_id
    from orders as o
    inner join fx_changed_from as f on o.currency = f.currency and cast(o.created_at as date) >= f.from_date
{%- endmacro %}

{# Pre-hook: list the touched orders for the model's SQL (delete+insert on order_id replaces their rows). #}
{% macro orders_list_touched() -%}
    {{ return(adapter.dispatch('orders_list_touched', 'rapport')()) }}
{%- endmacro %}

{% macro default__orders_list_touched() -%}
    {%- if execute and is_incremental() and not flags.EMPTY and rapport.increment_since() -%}
        {%- set reason = rapport.orders_full_reason() -%}
        {%- if reason is none -%}
            {%- set state = rapport.orders_state_relations() -%}
            {#- no delete: delete+insert on order_id replaces the rows of the orders the model returns -#}
            {%- do rapport.list_touched_keys([(state.touched, ['order_id'], rapport.orders_touched_sql(state))],
                'int_orders_enriched: incremental, recomputing {} orders') -%}
        {%- else -%}
            {%- do log('int_orders_enriched: building every order (' ~ reason ~ ')', info=true) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro spark__orders_list_touched() -%}
{%- endmacro %}

{# Post-hook, in the model's transaction: keep what this build read, drop the touched list. #}
{% macro orders_keep_state() -%}
    {{ return(adapter.dispatch('orders_keep_state', 'rapport')()) }}
{%- endmacro %}

{% macro default__orders_keep_state() -%}
    {%- if execute and not flags.EMPTY -%}
        {%- set state = rapport.orders_state_relations() -%}
        create or replace table {{ state.assignments }} as
        select max(last_assigned_at) as last_assigned_at from {{ ref('int_customer_ids_assigned') }};
        create or replace table {{ state.fx }} as {{ rapport.orders_fx_sql() }};
        drop table if exists {{ state.touched }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__orders_keep_state() -%}
{%- endmacro %}
