-- Every source record (recomputed here from staging, independently of int_identity_records_unioned) appears
-- exactly once in customer_identities, and customer_identities holds nothing else.
with expected as (
    select
        'orders.customer' as source,
        cast(customer_id as {{ dbt.type_string() }}) as source_id
    from {{ ref('stg_shop__customers') }}
    union
    select
        'orders.customer' as source,
        cast(customer_id as {{ dbt.type_string() }}) as source_id
    from {{ ref('stg_shop__orders') }}
    where customer_id is not null
    union all
    select
        'orders.guest_order' as source,
        cast(order_id as {{ dbt.type_string() }}) as source_id
    from {{ ref('stg_shop__orders') }}
    where customer_id is null
    union all
    select
        'helpdesk.user' as source,
        cast(user_id as {{ dbt.type_string() }}) as source_id
    from {{ ref('stg_helpdesk__users') }}
    where role = 'end-user'
    union all
    select
        'esp.contact' as source,
        contact_id as source_id
    from {{ ref('stg_esp__contacts') }}
    union all
    select
        'esp.audience_member' as source,
        campaign_id || ':' || email as source_id
    from {{ ref('stg_esp__audiences') }}
),

actual as (
    select
        source,
        source_id,
        count(*) as n
    from {{ ref('customer_identities') }}
    group by source, source_id
)

select
    e.source,
    e.source_id,
    coalesce(a.n, 0) as appearances
from expected as e
left join actual as a on e.source = a.source and e.source_id = a.source_id
where coalesce(a.n, 0) != 1
union all
select
    a.source,
    a.source_id,
    a.n as appearances
from actual as a
where not exists (
    select 1 from expected as e
    where e.source = a.source and e.source_id = a.source_id
)
