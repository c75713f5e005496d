-- Identifier values that link nobody (marts.md "non-identifying values"): carried by more than
-- var('max_identifier_fanout') account-like records, or, for phones, seen beside more than that many
-- distinct normalised emails on any record or order. fanout is the count that broke the limit.
select
    identifier_type,
    identifier_value,
    case when is_shared_by_accounts then account_records else distinct_emails end as fanout,
    case when is_shared_by_accounts then 'shared_by_accounts' else 'phone_shared_by_emails' end as reason,
    account_records,
    distinct_emails,
    records,
    {{ var('max_identifier_fanout') }} as max_identifier_fanout
from {{ ref('int_identity_fanout_measured') }}
where is_rejected
