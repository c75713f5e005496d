-- Normalised email -> stitched customer, for resolving any email (ESP events, audiences) to a customer.
-- Only emails that are identifiers of some record and not rejected by the fan-out guard: a non-rejected
-- email links all its records into one cluster, so each maps to exactly one customer.
-- (each email's distinct customers first, then counted: one grouping of the 5.8M identifier rows, not two)
with email_customer_pairs as (
    select distinct
        i.identifier_value as email_normalized,
        a.customer_id
    from {{ ref('int_identity_identifiers_unpivoted') }} as i
    inner join {{ ref('int_identity_fanout_measured') }} as f
        on i.identifier_type = f.identifier_type and i.identifier_value = f.identifier_value
    inner join {{ ref('int_customer_ids_assigned') }} as a
        on i.record_id = a.record_id and a.is_current
    where i.identifier_type = 'email' and not f.is_rejected
)

select
    email_normalized,
    min(customer_id) as customer_id,
    count(customer_id) as customer_count
from email_customer_pairs
group by email_normalized
