{#
  Incremental int_email_customers (issue 16, docs/marts-incremental.md "int_email_customers"): on DuckDB a day
  build deletes the rows of every email whose row can differ from the last build's (touched), and inserts
  those emails' rows, computed by the model's own SQL with its identifier rows filtered to them. On Spark the
  model is a plain table.

  An email E's row is a function of its carriers (the records whose identifier rows hold E), their current
  customer ids and E's is_rejected. The touched emails, with the letters of the docs:
  (a) the emails touched records carry now, the touched records being identity_touched_records() for `since`
      and the records whose current pair the ids (re)wrote since the last build (`last_assigned_at` newer
      than the kept watermark, as for customers): a carrier gained, or a carrier's customer changed;
  (b) the emails whose is_rejected differs from the kept copy of the rejected emails;
  (c) the emails the table maps, before this build, to a customer id a touched record holds or held (any
      of its pairs in the ids table, which keeps every pair ever assigned): a carrier lost E (it changed or
      vanished), and E's old row named that carrier's customer then.

  State beside the model, written by its post-hook in the model's transaction (a build that fails before the
  model commits leaves the previous state, which the table was built from):
  `int_email_customers__seen_assignments` (the watermark), `__seen_rejected` (identifier_type,
  identifier_value: rapport forget deletes a person's values there as in every derived table).
  `__touched` holds the touched emails between the pre-hook and the insert (dropped after).
#}

{# true when the model builds by email: an incremental DuckDB build with `since` and the kept state. #}
{% macro email_customers_by_email() -%}
    {{ return(adapter.dispatch('email_customers_by_email', 'rapport')()) }}
{%- endmacro %}

{% macro default__email_customers_by_email() -%}
    {#- a dbt unit test renders the model with no relation of its own (`this` is none): the full SQL -#}
    {%- if this is none or not (is_incremental() and rapport.increment_since()) -%}{{ return(false) }}{%- endif -%}
    {%- set state = rapport.email_customers_state_relations() -%}
    {{ return(rapport.all_tables_exist_now([state.assignments, state.rejected])) }}
{%- endmacro %}

{% macro spark__email_customers_by_email() -%}
    {{ return(false) }}
{%- endmacro %}

{# The state tables and the touched list, beside the model. #}
{% macro email_customers_state_relations() -%}
    {%- set named = {} -%}
    {%- for kind, suffix in [('assignments', 'seen_assignments'), ('rejected', 'seen_rejected'),
                             ('touched', 'touched')] -%}
        {%- do named.update({kind: this.incorporate(
            path={'identifier': this.identifier ~ '__' ~ suffix}, type='table')}) -%}
    {%- endfor -%}
    {{ return(named) }}
{%- endmacro %}

{# The relation listing this build's touched emails (one column email_normalized), or none (full build). #}
{% macro email_customers_touched_relation() -%}
    {{ return(rapport.email_customers_state_relations().touched if rapport.email_customers_by_email() else none) }}
{%- endmacro %}

{# A query, one column email_normalized: every email whose row can differ from the last build's (it may also
   list emails with no row, before or after). The argument is in docs/marts-incremental.md. #}
{% macro email_customers_touched_sql() -%}
    {%- set state = rapport.email_customers_state_relations() -%}
    {#- the watermark as a literal: the scan of the ids skips, by their zone maps, the row groups no build
        wrote since (a build's pairs are inserted together) -#}
    {%- set watermark = run_query('select cast(max(last_assigned_at) as ' ~ dbt.type_string() ~ ') from '
        ~ state.assignments).columns[0].values()[0] -%}
    with current_ids as not materialized (
        select record_id, customer_id, last_assigned_at
        from {{ ref('int_customer_ids_assigned') }}
        where is_current
    ),

    touched_records as (
        select touched_key as record_id from {{ rapport.identity_touched_records() }}
        union
        select record_id from current_ids
        {%- if watermark is not none %}
            where last_assigned_at > cast('{{ watermark }}' as timestamp)
        {%- endif %}
    ),

    rejected_now as (
        select identifier_value
        from {{ ref('int_identity_fanout_measured') }}
        where identifier_type = 'email' and is_rejected
    ),

    rejected_before as (
        select identifier_value
        from {{ state.rejected }}
        where identifier_type = 'email'
    ),

    -- the customers a touched record holds or held: its pairs, current or retired (a vanished record's pair
    -- is retired, not deleted), so no anti-join with every current id (0.9 s at 1M people) finds a retired id
    customers_of_touched as (
        select p.customer_id
        from {{ ref('int_customer_ids_assigned') }} as p
        where p.record_id in (select t.record_id from touched_records as t)
    )

    -- (a) the emails touched records carry now
    select i.identifier_value as email_normalized
    from {{ ref('int_identity_identifiers_unpivoted') }} as i
    where i.identifier_type = 'email'
        and i.record_id in (select t.record_id from touched_records as t)
    union
    -- (b) the emails whose rejection flipped
    (select identifier_value from rejected_now
        except
        select identifier_value from rejected_before)
    union
    (select identifier_value from rejected_before
        except
        select identifier_value from rejected_now)
    union
    -- (c) the emails the table maps to a customer a touched record holds or held
    select e.email_normalized
    from {{ this }} as e
    where e.customer_id in (select k.customer_id from customers_of_touched as k)
{%- endmacro %}

{# Pre-hook: list the touched emails and delete their rows (dbt's delete+insert deletes only the keys it
   inserts: an email that lost its row would stay); with no `since` (or no kept state) delete every row, as
   the build returns them all. #}
{% macro email_customers_delete_touched() -%}
    {{ return(adapter.dispatch('email_customers_delete_touched', 'rapport')()) }}
{%- endmacro %}

{% macro default__email_customers_delete_touched() -%}
    {#- with --empty the build returns nothing: delete nothing either -#}
    {%- if is_incremental() and not flags.EMPTY -%}
        {%- set touched = rapport.email_customers_touched_relation() -%}
        {%- if touched -%}
            {{ rapport.list_touched_keys([(touched, ['email_normalized'], rapport.email_customers_touched_sql())],
                'int_email_customers: incremental by email, recomputing {} emails', delete_from=this) }}
        {%- else -%}
            delete from {{ this }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro spark__email_customers_delete_touched() -%}
{%- endmacro %}

{# Post-hook, in the model's transaction: keep what this build read, drop the touched list. #}
{% macro email_customers_keep_state() -%}
    {{ return(adapter.dispatch('email_customers_keep_state', 'rapport')()) }}
{%- endmacro %}

{% macro default__email_customers_keep_state() -%}
    {%- if execute and not flags.EMPTY and this is not none -%}
        {%- set state = rapport.email_customers_state_relations() -%}
        create or replace table {{ state.assignments }} as
        select max(last_assigned_at) as last_assigned_at from {{ ref('int_customer_ids_assigned') }};
        create or replace table {{ state.rejected }} as
        select identifier_type, identifier_value from {{ ref('int_identity_fanout_measured') }}
        where identifier_type = 'email' and is_rejected;
        drop table if exists {{ state.touched }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__email_customers_keep_state() -%}
{%- endmacro %}
