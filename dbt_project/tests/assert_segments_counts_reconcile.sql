-- Every customer has exactly one segment: segment counts sum to the number of customers.
with counts as (
    select
        (select count(*) from {{ ref('customers') }}) as customers,
        (select count(*) from {{ ref('customer_segments') }}) as segmented_customers,
        (select sum(customers) from {{ ref('segment_summary') }}) as summary_customers
)

select *
from counts
where
    segmented_customers <> customers
    or coalesce(summary_customers, 0) <> customers
