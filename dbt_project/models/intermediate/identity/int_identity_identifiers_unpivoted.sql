{{ config(
    materialized='incremental',
    unique_key='record_id',
    partition_by=['_part'],
    incremental_strategy=rapport.incremental_replace_strategy(),
    pre_hook=["{{ rapport.list_touched_values_before() }}", "{{ rapport.delete_touched_records() }}"],
    post_hook="{{ rapport.list_touched_values_after() }}"
) }}
-- Identifiers each record carries in its own fields (long form): normalised email, normalised phone and
-- the shop customer id (a shop customer's own id, a helpdesk user's external_id).
-- Incremental by record, like int_identity_records_unioned (macros/identity_touched.sql): the touched
-- records' rows are deleted, then those of the touched records that still exist are inserted. The values
-- touched (before and after, and the landed orders' phones) are listed beside it (`__touched`), for the
-- fan-out and edges to recompute.
-- depends_on: {{ source('shop', 'shop_orders') }} {{ ref('stg_shop__customers') }} {{ ref('stg_shop__orders') }}
-- depends_on: {{ ref('stg_helpdesk__users') }} {{ ref('stg_esp__contacts') }} {{ ref('stg_esp__audiences') }}
-- depends_on: {{ source('esp', 'esp_campaigns') }}
{%- set touched = rapport.identity_touched_records() %}

with
{%- if touched %}
    -- read through rapport.identity_touched, which the linter does not expand
    touched_records as (  -- noqa: ST03
        select touched_key from {{ touched }}
    ),
{%- endif %}

records as (
    select
        record_id,
        is_account_like,
        email_normalized,
        phone_normalized,
        shop_customer_key,
        _part
    from {{ ref('int_identity_records_unioned') }}
    where {{ rapport.identity_touched('record_id', touched) }}
),

identifiers as (
    select
        record_id,
        'email' as identifier_type,
        email_normalized as identifier_value,
        is_account_like,
        _part
    from records
    where email_normalized is not null
    union all
    select
        record_id,
        'phone' as identifier_type,
        phone_normalized as identifier_value,
        is_account_like,
        _part
    from records
    where phone_normalized is not null
    union all
    select
        record_id,
        'shop_customer_id' as identifier_type,
        shop_customer_key as identifier_value,
        is_account_like,
        _part
    from records
    where shop_customer_key is not null
)

select
    record_id,
    identifier_type,
    identifier_value,
    is_account_like,
    _part
from identifiers
