{#
  Incremental identity records (docs/identity-incremental.md "Records and identifiers"): a build recomputes
  int_identity_records_unioned and int_identity_identifiers_unpivoted for the records touched since the last
  build only, and deletes every touched record first, so that a record that vanished (a guest order that now
  names a customer, a helpdesk user turned agent, a placeholder customer replaced by the landed one, the
  placeholder of a customer no order names any more) leaves both tables.

  A model calling these must name every relation identity_touched_records() reads (`-- depends_on:` lines):
  the macro returns no SQL while dbt parses, so dbt would not see them.
#}

{# The record_id of a source's record: what int_identity_records_unioned computes from source and source_id. #}
{% macro identity_record_id(source, source_id) -%}
    '{{ source }}:' || cast({{ source_id }} as {{ dbt.type_string() }})
{%- endmacro %}

{# A subquery to select from (`from {{ identity_touched_records() }}`), one column touched_key: every record_id
   whose record may have appeared, changed or vanished since the last build; none when the calling model builds
   in full. A staging row changed only if a version of its key landed, and then it carries that version's
   _extracted_at (> since). #}
{% macro identity_touched_records() -%}
    {%- set since = rapport.increment_since() -%}
    {%- if not since -%}{{ return(none) }}{%- endif -%}
    {%- set raw_orders = source('shop', 'shop_orders') -%}
    {%- set sql -%}
        (select {{ rapport.identity_record_id('orders.customer', 'customer_id') }} as touched_key
        from {{ ref('stg_shop__customers') }}
        where _extracted_at > {{ since }}
        union
        -- the placeholder of every customer a landed order names now or named in an earlier version
        select {{ rapport.identity_record_id('orders.customer', 'customer_id') }} as touched_key
        from {{ raw_orders }}
        where customer_id is not null
            and id in (select landed.id from {{ raw_orders }} as landed where landed._extracted_at > {{ since }})
        union
        select {{ rapport.identity_record_id('orders.guest_order', 'order_id') }} as touched_key
        from {{ ref('stg_shop__orders') }}
        where _extracted_at > {{ since }}
        union
        select {{ rapport.identity_record_id('helpdesk.user', 'user_id') }} as touched_key
        from {{ ref('stg_helpdesk__users') }}
        where _extracted_at > {{ since }}
        union
        select {{ rapport.identity_record_id('esp.contact', 'contact_id') }} as touched_key
        from {{ ref('stg_esp__contacts') }}
        where _extracted_at > {{ since }}
        union
        -- an audience row landed, or its campaign changed (its send_at is the member's first_seen_at)
        select {{ rapport.identity_record_id('esp.audience_member', 'audience_member_id') }} as touched_key
        from {{ ref('stg_esp__audiences') }}
        where _extracted_at > {{ since }}
            or campaign_id in (
                select c.campaign_id from {{ ref('stg_esp__campaigns') }} as c where c._extracted_at > {{ since }}
            )) as touched
    {%- endset -%}
    {{ return(sql) }}
{%- endmacro %}

{# Condition: the record `record_id_expr` is one to recompute, `touched` being identity_touched_records()
   and the calling model selecting from it in the CTE touched_records (read once, whatever the branches); true
   when building in full. #}
{% macro identity_touched(record_id_expr, touched) -%}
    {%- if touched -%}
        {{ rapport.in_touched(record_id_expr, 'select touched_key from touched_records') }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# Pre-hook of an incremental identity model keyed by record_id: delete every touched record's rows, those the
   build no longer returns included (dbt's delete+insert deletes only the keys it inserts); every row when the
   table exists but the build has no `since` (it then returns every record). It runs in the model's
   transaction, before the insert. On Spark nothing: insert_overwrite replaces the touched partitions
   (key_bucket(record_id)) whole, with exactly the rows the build returns. #}
{% macro delete_touched_records(key_expr='record_id') -%}
    {{ return(adapter.dispatch('delete_touched_records', 'rapport')(key_expr)) }}
{%- endmacro %}

{% macro default__delete_touched_records(key_expr) -%}
    {#- with --empty the build returns nothing: delete nothing either -#}
    {%- if is_incremental() and not flags.EMPTY -%}
        {%- set touched = rapport.identity_touched_records() -%}
        delete from {{ this }}
        {%- if touched %} where {{ rapport.in_touched(key_expr, 'select touched_key from ' ~ touched) }}{% endif %}
    {%- endif -%}
{%- endmacro %}

{% macro spark__delete_touched_records(key_expr) -%}
{%- endmacro %}
