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
    {%- set raw_campaigns = source('esp', 'esp_campaigns') -%}
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
        -- an audience row landed, or its campaign's send_at (the member's first_seen_at) may have changed: a
        -- snapshot landed with a send_at other than the latest earlier snapshot's (a campaign is snapshotted
        -- daily: comparing spares the audiences of the campaigns that did not change)
        select {{ rapport.identity_record_id('esp.audience_member', 'audience_member_id') }} as touched_key
        from {{ ref('stg_esp__audiences') }}
        where _extracted_at > {{ since }}
            or campaign_id in (
                select landed.campaign_id
                from {{ raw_campaigns }} as landed
                left join {{ latest_version(raw_campaigns, 'campaign_id', 'snapshot_date desc',
                    where='_extracted_at <= ' ~ since) }}
                    on landed.campaign_id = versions.campaign_id
                where landed._extracted_at > {{ since }}
                    and (versions.campaign_id is null or landed.send_at is distinct from versions.send_at)
            )) as touched
    {%- endset -%}
    {{ return(sql) }}
{%- endmacro %}

{# Condition: the key `key_expr` is one to recompute, `touched` being identity_touched_records() (or
   identity_touched_values()) and the calling model selecting its touched_key in the CTE `cte` (read once,
   whatever the branches); true when building in full. #}
{% macro identity_touched(key_expr, touched, cte='touched_records') -%}
    {%- if touched -%}
        {{ rapport.in_touched(key_expr, 'select touched_key from ' ~ cte) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# Pre-hook of an incremental identity model: delete the rows of every touched key, those the build no longer
   returns included (dbt's delete+insert deletes only the keys it inserts); every row when the table exists but
   the build has no `since` (it then returns everything). It runs in the model's transaction, before the
   insert. On Spark nothing: insert_overwrite replaces the touched partitions (key_bucket(record_id)) whole,
   with exactly the rows the build returns, and the by-value models are plain tables there. #}
{% macro delete_touched_records() -%}
    {{ return(rapport.delete_touched('record_id', rapport.identity_touched_records())) }}
{%- endmacro %}

{% macro delete_touched_values() -%}
    {%- set key = "identifier_type || ':' || identifier_value" -%}
    {{ return(rapport.delete_touched(key, rapport.identity_touched_values())) }}
{%- endmacro %}

{% macro delete_touched(key_expr, touched) -%}
    {{ return(adapter.dispatch('delete_touched', 'rapport')(key_expr, touched)) }}
{%- endmacro %}

{% macro default__delete_touched(key_expr, touched) -%}
    {#- with --empty the build returns nothing: delete nothing either -#}
    {%- if is_incremental() and not flags.EMPTY -%}
        delete from {{ this }}
        {%- if touched %} where {{ rapport.in_touched(key_expr, 'select touched_key from ' ~ touched) }}{% endif %}
    {%- endif -%}
{%- endmacro %}

{% macro spark__delete_touched(key_expr, touched) -%}
{%- endmacro %}

{#
  Incremental fan-out and edges (docs/identity-incremental.md): a build recomputes int_identity_fanout_measured
  and int_identity_edges_filtered for the identifier values it touched only: the values touched records carry
  now or carried before this build, and the phone of every version of a landed order (a checkout phone beside
  an email counts towards the phone's fan-out, and orders are no records). A value's fan-out and edges depend
  on nothing else: the records and orders that carry it.

  What touched records carried before is gone once int_identity_identifiers_unpivoted is replaced, so that
  model lists the touched values in `<identifiers>__touched`, tagged with the build's `since`, in its own
  transaction: its pre-hook the values before and the landed orders' phones, its post-hook the values after.
  A retry of the build (same `since`) adds to them; int_identity_edges_filtered, the last to read them,
  empties the table (and so does the next build with another `since`). A rebuild in full of the identifiers
  under a `since` leaves a marker row (null type and value): the by-value models then build in full too. On Spark
  these models are plain tables, rebuilt whole (a 1% day touches every key bucket there anyway).
#}

{# The relation beside `identifiers` listing the values touched by the build under way. #}
{% macro identity_touched_values_relation(identifiers) -%}
    {{ return(identifiers.incorporate(path={'identifier': identifiers.identifier ~ '__touched'}, type='table')) }}
{%- endmacro %}

{# The `since` tag of the rows int_identity_identifiers_unpivoted writes to its __touched table. #}
{% macro identity_touched_tag() -%}
    {%- set since = var('since', none) -%}
    {{ return(("cast('" ~ since ~ "' as timestamp)") if since else 'cast(null as timestamp)') }}
{%- endmacro %}

{# Pre-hook of int_identity_identifiers_unpivoted, before delete_touched_records: list the values the touched
   records carry before the build replaces them, and the phones of every version of the orders landed. #}
{% macro list_touched_values_before() -%}
    {{ return(adapter.dispatch('list_touched_values_before', 'rapport')()) }}
{%- endmacro %}

{% macro default__list_touched_values_before() -%}
    {%- if not flags.EMPTY -%}
        {%- set listed = rapport.identity_touched_values_relation(this) -%}
        {%- set tag = rapport.identity_touched_tag() -%}
        {%- set touched = rapport.identity_touched_records() if is_incremental() else none -%}
        {%- set raw_orders = source('shop', 'shop_orders') -%}
        create table if not exists {{ listed }} (
            since timestamp, identifier_type {{ dbt.type_string() }}, identifier_value {{ dbt.type_string() }}
        );
        delete from {{ listed }} where since is distinct from {{ tag }};
        {%- if touched %}
            insert into {{ listed }}
            select distinct {{ tag }}, identifier_type, identifier_value
            from {{ this }}
            where {{ rapport.in_touched('record_id', 'select touched_key from ' ~ touched) }};
            -- every version of a landed order, the current one included (normalised as stg_shop__orders does);
            -- a phone that does not parse is no identifier (and a null value must not look like the marker)
            insert into {{ listed }}
            select {{ tag }}, 'phone', n.identifier_value
            from (
                select normalize_phone(p.phone, cast(null as {{ dbt.type_string() }})) as identifier_value
                from (
                    select distinct o.phone
                    from {{ raw_orders }} as o
                    where o.phone is not null
                        and o.id in (
                            select landed.id from {{ raw_orders }} as landed
                            where landed._extracted_at > {{ rapport.increment_since() }}
                        )
                ) as p
            ) as n
            where n.identifier_value is not null;
        {%- elif var('since', none) %}
            insert into {{ listed }} values ({{ tag }}, null, null);
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{% macro spark__list_touched_values_before() -%}
{%- endmacro %}

{# Post-hook of int_identity_identifiers_unpivoted: list the values the touched records carry now. #}
{% macro list_touched_values_after() -%}
    {{ return(adapter.dispatch('list_touched_values_after', 'rapport')()) }}
{%- endmacro %}

{% macro default__list_touched_values_after() -%}
    {%- set touched = rapport.identity_touched_records() if is_incremental() and not flags.EMPTY else none -%}
    {%- if touched -%}
        insert into {{ rapport.identity_touched_values_relation(this) }}
        select distinct {{ rapport.identity_touched_tag() }}, identifier_type, identifier_value
        from {{ this }}
        where {{ rapport.in_touched('record_id', 'select touched_key from ' ~ touched) }}
    {%- endif -%}
{%- endmacro %}

{% macro spark__list_touched_values_after() -%}
{%- endmacro %}

{# A subquery to select from, one column touched_key (`type:value`): every identifier value touched since the
   last build (int_identity_identifiers_unpivoted's list); none when the calling model builds in full. #}
{% macro identity_touched_values() -%}
    {{ return(adapter.dispatch('identity_touched_values', 'rapport')()) }}
{%- endmacro %}

{% macro default__identity_touched_values() -%}
    {%- set since = rapport.increment_since() -%}
    {%- if not since -%}{{ return(none) }}{%- endif -%}
    {%- set listed = rapport.identity_touched_values_relation(ref('int_identity_identifiers_unpivoted')) -%}
    {%- if not rapport.table_exists_now(listed) -%}{{ return(none) }}{%- endif -%}
    {%- set rebuilt = run_query(
        'select count(*) from ' ~ listed ~ ' where since = ' ~ since ~ ' and identifier_type is null'
    ).columns[0].values()[0] -%}
    {%- if rebuilt | int > 0 -%}{{ return(none) }}{%- endif -%}
    {{ return("(select distinct identifier_type || ':' || identifier_value as touched_key from " ~ listed
        ~ ' where since = ' ~ since ~ ') as touched') }}
{%- endmacro %}

{% macro spark__identity_touched_values() -%}
    {{ return(none) }}
{%- endmacro %}
